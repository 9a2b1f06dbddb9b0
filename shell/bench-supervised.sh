#!/usr/bin/env bash
# Benchmark: the supervising shim's peak memory during a real, refreshed terraform run.
#
# Starts moto (the test bed's) with IAM enforcement on, then runs through the shim
# (release build) `terraform init` and a `terraform apply` whose local-exec sleeps 30 s,
# with 15-minute sessions renewed every ~10 s (so the endpoint serves and the refresher
# renews during the run). While the apply runs it samples VmHWM (peak resident set) of
# the shim's pid from /proc/PID/status. The `terraform` shim execs the full `breakglass`
# binary in the same process, so that pid is the supervisor for the whole run.
#
#   bash shell/bench-supervised.sh          # prints the figures; target: peak < 20 MB
#   SLEEP=60 bash shell/bench-supervised.sh # a longer apply
#
# Uses CARGO_TARGET_DIR when set. Needs nothing but loopback.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
SLEEP=${SLEEP:-30}
TARGET_MB=20

bed=$(bash shell/testbed.sh)
py="$bed/venv/bin/python3"

echo "bench: building the release binaries" >&2
bash "$repo/shell/build.sh" --quiet
target_dir=${CARGO_TARGET_DIR:-$repo/target}
release="$target_dir/release"

work=$(mktemp -d /tmp/breakglass-bench.XXXXXX)
moto_pid=""
apply_pid=""
cleanup() {
  [ -n "$apply_pid" ] && kill "$apply_pid" 2>/dev/null || true
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true
  [ -n "$moto_pid" ] && wait "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# moto on a free loopback port.
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
"$bed/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 300); do
  "$py" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
"$py" tests/support/moto_admin.py setup "$endpoint" >"$work/bed.json"
"$py" tests/support/moto_admin.py enforce "$endpoint" >/dev/null
field() { "$py" -c "import json,sys; d=json.load(open('$work/bed.json')); print($1)"; }
alice_key=$(field 'd["users"]["alice"]["key"]')
alice_secret=$(field 'd["users"]["alice"]["secret"]')
deploy=$(field 'd["roles"]["deploy"]')

# A sandbox: home, shim links, the real terraform, the project.
mkdir -p "$work/home" "$work/shims" "$work/real" "$work/proj"
ln -s "$release/breakglass-shim" "$work/shims/terraform"
ln -s "$bed/bin/terraform" "$work/real/terraform"
: >"$work/terraformrc"
cat >"$work/proj/.breakglass.toml" <<EOF
enabled = true
region = "us-east-1"
[role]
arn = "$deploy"
duration = "15m"
refresh_before = "14m50s"
EOF
cat >"$work/proj/main.tf" <<EOF
terraform {
  backend "s3" {
    bucket                      = "tfstate"
    key                         = "bench/terraform.tfstate"
    region                      = "us-east-1"
    use_path_style              = true
    skip_region_validation      = true
    skip_requesting_account_id  = true
    skip_credentials_validation = true
    use_lockfile                = true
  }
}

resource "terraform_data" "work" {
  triggers_replace = [timestamp()]
  provisioner "local-exec" {
    command = "sleep $SLEEP"
  }
}
EOF

envs=(
  HOME="$work/home"
  PATH="$work/shims:$work/real:/usr/bin:/bin"
  XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data" XDG_STATE_HOME="$work/state"
  TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1
  BREAKGLASS_BIN="$release/breakglass"
  BREAKGLASS_ENDPOINT_LOG="$work/endpoint.log"
  AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  AWS_ACCESS_KEY_ID="$alice_key" AWS_SECRET_ACCESS_KEY="$alice_secret"
)
tf() { (cd "$work/proj" && exec env -i "${envs[@]}" terraform "$@"); }

echo "bench: terraform init" >&2
tf init -input=false -no-color >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; exit 1; }

echo "bench: terraform apply (local-exec sleeps ${SLEEP} s), sampling the shim's memory" >&2
# The subshell execs env, which execs the shim, which execs `breakglass`: one pid.
(cd "$work/proj" && exec env -i "${envs[@]}" terraform apply -auto-approve -input=false -no-color) \
  >"$work/apply.log" 2>&1 </dev/null &
apply_pid=$!
shim_pid=$apply_pid
for _ in $(seq 1 200); do
  case "$(readlink "/proc/$shim_pid/exe" 2>/dev/null)" in */breakglass) break ;; esac
  sleep 0.01
done

peak_kb=0
rss_max_kb=0
samples=0
exe=""
while [ -r "/proc/$shim_pid/status" ]; do
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$shim_pid/status" 2>/dev/null || true)
  # A process that has exited (a zombie until `wait`) has no Vm* lines.
  [ -n "$hwm" ] || break
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$shim_pid/status" 2>/dev/null || true)
  exe=$(readlink "/proc/$shim_pid/exe" 2>/dev/null || echo "$exe")
  [ "$hwm" -gt "$peak_kb" ] && peak_kb=$hwm
  [ -n "$rss" ] && [ "$rss" -gt "$rss_max_kb" ] && rss_max_kb=$rss
  samples=$((samples + 1))
  sleep 0.2
done
status=0
wait "$apply_pid" || status=$?
apply_pid=""

served=$(grep -c ' 200 ' "$work/endpoint.log" || true)
keys=$(awk '$2 == 200 {print $3}' "$work/endpoint.log" | sort -u | wc -l)
state=$("$py" tests/support/moto_admin.py op "$endpoint" \
  "$(field 'd["users"]["admin"]["key"]')" "$(field 'd["users"]["admin"]["secret"]')" \
  list tfstate)

echo "apply exit status:        $status"
echo "shim process:             pid $shim_pid, $(basename "$exe") ($samples samples)"
echo "endpoint answers (200):   $served, distinct key sets: $keys"
echo "state objects:            $state"
awk -v p="$peak_kb" -v r="$rss_max_kb" -v t="$TARGET_MB" 'BEGIN {
  printf "shim peak RSS (VmHWM):    %d kB = %.1f MB (target < %d MB)\n", p, p / 1024, t
  printf "shim largest VmRSS seen:  %d kB = %.1f MB\n", r, r / 1024
}'
if [ "$status" -ne 0 ]; then
  echo "bench: the apply failed:" >&2
  cat "$work/apply.log" >&2
  exit 1
fi
[ "$peak_kb" -lt $((TARGET_MB * 1024)) ] || { echo "bench: over the target" >&2; exit 2; }
