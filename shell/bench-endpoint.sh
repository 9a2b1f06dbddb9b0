#!/usr/bin/env bash
# Load-tests the credential endpoint (src/server.rs): builds the
# `endpoint_bench_server` example in release mode, starts it, and runs wrk against it
# with the Authorization token, then prints p50 and p99 latency.
#
#   shell/bench-endpoint.sh [CONNECTIONS] [DURATION] [THREADS]   (defaults: 50 10s 1)
#
# By default wrk runs closed-loop: every connection sends its next request as soon as
# the previous answer arrives, so the figures include queueing at saturation. With
# DELAY_MS=N each connection waits N ms between requests (a paced load; wrk's latency
# still counts only the request itself).
#
# Needs wrk (Debian package `wrk`; installed with apt-get when missing).
# The target is a p99 under 2 ms.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
connections=${1:-50}
duration=${2:-10s}
threads=${3:-1}

. "$repo/shell/need.sh"
need_commands bench wrk || exit 1

echo "bench: building the example (release)" >&2
cargo build --release --quiet --example endpoint_bench_server
target_dir=${CARGO_TARGET_DIR:-$repo/target}
server="$target_dir/release/examples/endpoint_bench_server"

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The server runs until its stdin closes: hold a fifo open on fd 3.
mkfifo "$tmp/stdin"
BREAKGLASS_ENDPOINT_LOG="" "$server" <"$tmp/stdin" >"$tmp/stdout" &
server_pid=$!
exec 3>"$tmp/stdin"

for _ in $(seq 100); do
  [ -s "$tmp/stdout" ] && break
  sleep 0.05
done
read -r url token <"$tmp/stdout" || { echo "bench: the server printed no URL" >&2; exit 1; }

# A quick check that the token works before loading it.
echo "bench: $url" >&2
wrk -t1 -c1 -d1s -H "Authorization: $token" "$url" >/dev/null

pacing=()
if [ -n "${DELAY_MS:-}" ]; then
  printf 'function delay() return %d end\n' "$DELAY_MS" >"$tmp/delay.lua"
  pacing=(-s "$tmp/delay.lua")
fi
wrk -t"$threads" -c"$connections" -d"$duration" --latency "${pacing[@]}" \
  -H "Authorization: $token" "$url" | tee "$tmp/wrk"

if grep -q "Non-2xx or 3xx responses" "$tmp/wrk"; then
  echo "bench: some requests were not answered 200" >&2
  exit 1
fi
p50=$(awk '$1 == "50%" { print $2 }' "$tmp/wrk")
p99=$(awk '$1 == "99%" { print $2 }' "$tmp/wrk")
rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$tmp/wrk")
echo "bench: ${connections} connections, ${duration}${DELAY_MS:+, ${DELAY_MS} ms between requests}: p50 ${p50}  p99 ${p99}  (${rps} req/s; load average $(cut -d' ' -f1-3 /proc/loadavg))"

exec 3>&-
wait "$server_pid"
server_pid=""
