#!/usr/bin/env bash
# Measures what the shim costs on the credential path, with hyperfine:
#   (a) pass-through (BREAKGLASS=0): the shim execs the real terraform;
#   (b) break-glass with a warm credential cache: no STS call, the full binary reads the
#       cache and execs terraform with the role's credentials (target: < 5 ms more than a);
#   (c) break-glass cold: every run assumes the role against moto (IAM enforcement on).
# "terraform plan" is used because `version` is passed through even in break-glass mode;
# the real terraform is a trivial C program that returns 0, so only the shim is timed.
#
#   shell/bench-credentials.sh          # CARGO_TARGET_DIR is honoured
#   RUNS=200 COLD_RUNS=30 shell/bench-credentials.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
RUNS=${RUNS:-100}
COLD_RUNS=${COLD_RUNS:-20}

. "$repo/shell/need.sh"
need_commands bench hyperfine gcc || exit 1

bed=$(bash shell/testbed.sh)
py="$bed/venv/bin/python3"

target=${CARGO_TARGET_DIR:-$repo/target}
echo "bench: building release binaries" >&2
bash "$repo/shell/build.sh" --quiet
bin="$target/release"

work=$(mktemp -d)
moto_pid=""
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The real terraform: returns 0 and does nothing else.
mkdir -p "$work/real" "$work/shims" "$work/home" "$work/cache" "$work/proj"
printf 'int main(void) { return 0; }\n' > "$work/true.c"
gcc -O2 -o "$work/real/terraform" "$work/true.c"
ln -s "$bin/breakglass-shim" "$work/shims/terraform"

# moto on a free port, set up, IAM enforcement on.
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
"$bed/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
for _ in $(seq 300); do
  "$py" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
setup=$("$py" tests/support/moto_admin.py setup "$endpoint")
"$py" tests/support/moto_admin.py enforce "$endpoint" >/dev/null
field() { "$py" -c "import json, sys; print(json.loads(sys.argv[1])$1)" "$setup"; }
key=$(field '["users"]["alice"]["key"]')
secret=$(field '["users"]["alice"]["secret"]')
role=$(field '["roles"]["deploy"]')

cat > "$work/proj/.breakglass.toml" <<EOF
enabled = true
region = "us-east-1"
[role]
arn = "$role"
EOF

base_env=(
  HOME="$work/home" XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data" XDG_STATE_HOME="$work/state"
  PATH="$work/shims:$work/real:/usr/bin:/bin" BREAKGLASS_BIN="$bin/breakglass" USER=alice
  AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret"
  AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
)
cd "$work/proj"
inenv() { env -i "${base_env[@]}" "$@"; }
hf() {  # hf NAME [hyperfine options...] -- runs `terraform plan` in the project
  local name=$1; shift
  inenv "$@" hyperfine --shell=none --warmup 5 --style basic \
    --export-json "$work/$name.json" "${hf_opts[@]}" -n "$name" 'terraform plan' >&2
}
median_ms() { "$py" -c "import json, sys; print('%.2f' % (json.load(open(sys.argv[1]))['results'][0]['median'] * 1000))" "$work/$1.json"; }

creds="$work/cache/breakglass/credentials"

# (a) pass-through.
hf_opts=(--runs "$RUNS")
hf passthrough BREAKGLASS=0
# For reference: the trivial terraform without any shim.
inenv hyperfine --shell=none --warmup 5 --style basic --runs "$RUNS" \
  --export-json "$work/direct.json" -n direct "$work/real/terraform plan" >&2

# (b) warm cache: prime it once, then check that runs use it and never write it.
primed=$(inenv terraform plan 2>&1 >/dev/null)
case $primed in *"breakglass: as $role"*) ;; *) echo "bench: priming failed: $primed" >&2; exit 1 ;; esac
warm_check=$(inenv terraform plan 2>&1 >/dev/null)
case $warm_check in *", cached)"*) ;; *) echo "bench: the cache is not used: $warm_check" >&2; exit 1 ;; esac
before=$(sha256sum "$creds"/*.json)
hf warm
after=$(sha256sum "$creds"/*.json)
[ "$before" = "$after" ] || { echo "bench: the warm runs renewed the credentials" >&2; exit 1; }

# (c) cold: every run assumes the role.
hf_opts=(--runs "$COLD_RUNS" --prepare "rm -rf $creds")
hf cold

direct=$(median_ms direct)
pass=$(median_ms passthrough)
warm=$(median_ms warm)
cold=$(median_ms cold)
diff=$("$py" -c "print('%.2f' % ($warm - $pass))")
met=$("$py" -c "print('met' if $warm - $pass < 5 else 'NOT met')")
cat <<EOF
breakglass credential-path benchmark (medians; hyperfine, --shell=none)
  trivial terraform, no shim:            ${direct} ms
  (a) pass-through (BREAKGLASS=0):       ${pass} ms
  (b) break-glass, warm cache:           ${warm} ms
      warm - pass-through:               ${diff} ms  (target < 5 ms: ${met})
  (c) break-glass, cold (moto, enforced): ${cold} ms
EOF
