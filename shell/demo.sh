#!/usr/bin/env bash
# The one-command demo: the whole break-glass story on this machine, with no AWS
# account. It
#   1. builds breakglass (and the test bed: moto and a real Terraform) if needed,
#   2. starts moto (a local AWS) on a free loopback port,
#   3. creates a deployment role, Alice (who may assume it), and a versioned,
#      replicated state bucket, then switches IAM enforcement on,
#   4. writes a throwaway Terraform project with a .breakglass.toml and an S3 backend,
#   5. runs `breakglass doctor` on it,
#   6. runs `terraform init`, `plan` and `apply` through the shim as Alice, in
#      break-glass mode,
#   7. shows the audit trail (`breakglass log`),
#   8. shows where the state went, and cleans everything up.
#
#   bash shell/demo.sh
#   BREAKGLASS_BIN_DIR=DIR bash shell/demo.sh   # use the built breakglass and
#                                               # breakglass-shim in DIR (no build)
#
# It builds the dev profile (`cargo build --bins`), the build `shell/test.sh` then
# reuses: after the demo only the tests' own code is left to compile. The shipped,
# optimised binaries come from `shell/install.sh`.
#
# Nothing outside a temporary directory is touched: HOME, the XDG directories and the
# Terraform CLI config all point into it. No input is read. Exit 0 on success.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
started=$(date +%s)

section() { printf '\n=== %s ===\n' "$*"; }
note() { printf 'demo: %s\n' "$*"; }
die() {
  printf 'demo: FAILED: %s\n' "$*" >&2
  exit 1
}
# Runs and shows a command line ("$ ..."), failing the demo if it fails.
show() {
  printf '$ %s\n' "$*"
  "$@" || die "\`$*\` exited with $?"
}

tmp=""
moto_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$moto_pid" ] && kill -0 "$moto_pid" 2>/dev/null; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. build -----------------------------------------------------------------------
section "1/8 Build breakglass and the test bed"
if [ -n "${BREAKGLASS_BIN_DIR:-}" ]; then
  bin_dir=$(cd "$BREAKGLASS_BIN_DIR" && pwd) || die "BREAKGLASS_BIN_DIR=$BREAKGLASS_BIN_DIR is not a directory"
  note "using the binaries in $bin_dir (BREAKGLASS_BIN_DIR)"
else
  show cargo build --bins </dev/null
  # Where cargo put them (CARGO_TARGET_DIR and build.target-dir included).
  target_dir=$(cargo metadata --format-version 1 --no-deps </dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  bin_dir=$(cd "${target_dir:-$repo/target}/debug" && pwd) || die "cannot find cargo's debug directory"
fi
for b in breakglass breakglass-shim; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing: build it with \`cargo build --bins\`, or unset BREAKGLASS_BIN_DIR"
done
bed=$(bash shell/testbed.sh </dev/null | tail -n 1) || die "the test bed could not be built (bash shell/testbed.sh)"
py="$bed/venv/bin/python3"
for f in "$py" "$bed/bin/moto_server" "$bed/bin/terraform"; do
  [ -x "$f" ] || die "$f is missing: remove $bed and run \`bash shell/testbed.sh\`"
done
note "breakglass: $bin_dir/breakglass"
note "test bed:   $bed (moto, $("$bed/bin/terraform" version 2>/dev/null </dev/null | head -n 1))"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/breakglass-demo.XXXXXX")
admin() { "$py" "$repo/tests/support/moto_admin.py" "$@" </dev/null; }

# --- 2. moto -------------------------------------------------------------------------
section "2/8 Start moto (a local AWS) on a free loopback port"
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
"$bed/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$tmp/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$moto_pid" 2>/dev/null || die "moto_server exited: $(tail -n 5 "$tmp/moto.log")"
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "moto_server did not listen on $endpoint within 30 s"
note "moto is listening on $endpoint (pid $moto_pid)"

# --- 3. identities and the state bucket ----------------------------------------------
section "3/8 Create the deployment role, Alice, and the state bucket"
admin setup "$endpoint" >"$tmp/bed.json" || die "moto_admin.py setup failed"
field() { "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$tmp/bed.json" "$1"; }
role_arn=$(field 'd["roles"]["deploy"]')
alice_arn=$(field 'd["users"]["alice"]["arn"]')
alice_key=$(field 'd["users"]["alice"]["key"]')
alice_secret=$(field 'd["users"]["alice"]["secret"]')
admin_key=$(field 'd["users"]["admin"]["key"]')
admin_secret=$(field 'd["users"]["admin"]["secret"]')
bucket=tfstate
state_key=demo/terraform.tfstate
admin op "$endpoint" "$admin_key" "$admin_secret" versioning "$bucket" Enabled >/dev/null || die "cannot enable versioning"
admin op "$endpoint" "$admin_key" "$admin_secret" replication "$bucket" >/dev/null || die "cannot set up replication"
admin enforce "$endpoint" >/dev/null || die "cannot switch IAM enforcement on"
note "deployment role: $role_arn (may use S3)"
note "Alice:           $alice_arn (may only assume roles: no S3 rights of her own)"
note "state bucket:    s3://$bucket (versioned, replicated to s3://$bucket-replica)"
note "IAM enforcement is on: every request is signed and checked"

# --- 4. the project --------------------------------------------------------------------
section "4/8 Write a throwaway Terraform project"
project="$tmp/project"
home="$tmp/home"
mkdir -p "$project" "$home" "$tmp/cache" "$tmp/data" "$tmp/state"
: >"$tmp/terraformrc"
cat >"$project/.breakglass.toml" <<EOF
# The break-glass config: which role this project deploys with.
enabled = true
region = "us-east-1"

[role]
arn = "$role_arn"
EOF
cat >"$project/main.tf" <<'EOF'
terraform {
  backend "s3" {
    bucket                      = "tfstate"
    key                         = "demo/terraform.tfstate"
    region                      = "us-east-1"
    use_path_style              = true
    skip_region_validation      = true
    skip_requesting_account_id  = true
    skip_credentials_validation = true
    use_lockfile                = true
  }
}

resource "terraform_data" "hotfix" {
  input = "deployed with breakglass while the platform was down"
}

output "hotfix" {
  value = terraform_data.hotfix.output
}
EOF
note "$project"
for f in .breakglass.toml main.tf; do
  printf -- '--- %s\n' "$f"
  cat "$project/$f"
done

# Everything below runs as Alice, in a clean environment: only these variables.
shims="$tmp/shims"
run_env=(
  "HOME=$home"
  "XDG_CACHE_HOME=$tmp/cache"
  "XDG_DATA_HOME=$tmp/data"
  "XDG_STATE_HOME=$tmp/state"
  "XDG_CONFIG_HOME=$tmp/config"
  "TF_CLI_CONFIG_FILE=$tmp/terraformrc"
  "TF_IN_AUTOMATION=1"
  "CHECKPOINT_DISABLE=1"
  "PATH=$shims:$bin_dir:$bed/bin:/usr/bin:/bin"
  "AWS_ACCESS_KEY_ID=$alice_key"
  "AWS_SECRET_ACCESS_KEY=$alice_secret"
  "AWS_REGION=us-east-1"
  "AWS_ENDPOINT_URL=$endpoint"
  "AWS_EC2_METADATA_DISABLED=true"
  "BREAKGLASS=1"
  # The reason travels as an STS session tag. (No spaces here: moto's signature
  # check re-encodes a space in a form body differently from the Rust SDK, and
  # refuses the request; AWS accepts spaces.)
  "BREAKGLASS_REASON=INC-1234/demo:platform-down"
  "USER=${USER:-$(id -un)}"
  "TERM=${TERM:-dumb}"
  "LANG=C.UTF-8"
)
# `as_alice CMD...`: run CMD in the project as Alice, showing the command line.
as_alice() {
  printf '$ %s\n' "$*"
  (cd "$project" && env -i "${run_env[@]}" "$@" </dev/null) || die "\`$*\` exited with $?"
}
tf_color=()
[ -t 1 ] || tf_color=(-no-color)

# --- 5. doctor ------------------------------------------------------------------------------
section "5/8 breakglass doctor: is this project ready for a break-glass run?"
as_alice "$bin_dir/breakglass" install --dir "$shims"
as_alice breakglass doctor
note "doctor passed (WARN lines are advice; only a FAIL would stop this demo)"

# --- 6. terraform through the shim -----------------------------------------------------------
section "6/8 terraform init, plan and apply through the shim, as Alice, in break-glass mode"
note "terraform is $(env -i "${run_env[@]}" sh -c 'command -v terraform') (the shim; the real one is $bed/bin/terraform)"
as_alice breakglass status
as_alice terraform init -input=false "${tf_color[@]}"
as_alice terraform plan -input=false "${tf_color[@]}"
as_alice terraform apply -input=false -auto-approve "${tf_color[@]}"

# --- 7. audit trail ----------------------------------------------------------------------------
section "7/8 breakglass log: the audit trail of the break-glass runs"
as_alice breakglass log

# --- 8. the state, and clean-up ------------------------------------------------------------------
section "8/8 Where the state went"
note "state: s3://$bucket/$state_key (backend \"s3\", locked with use_lockfile)"
admin op "$endpoint" "$admin_key" "$admin_secret" list "$bucket" >"$tmp/list.json" || die "cannot list s3://$bucket"
note "objects in s3://$bucket (listed from moto before it stops):"
"$py" -c 'import json, sys; [print("  s3://" + sys.argv[2] + "/" + k) for k in json.load(open(sys.argv[1]))["keys"]]' "$tmp/list.json" "$bucket"
"$py" -c 'import json, sys; sys.exit(0 if sys.argv[2] in json.load(open(sys.argv[1]))["keys"] else 1)' "$tmp/list.json" "$state_key" ||
  die "the state object s3://$bucket/$state_key is not in the bucket"
admin op "$endpoint" "$admin_key" "$admin_secret" get "$bucket" "$state_key" >"$tmp/state.json" || die "cannot read the state object"
"$py" -c '
import json, sys
state = json.loads(json.load(open(sys.argv[1]))["body"])
names = [r["type"] + "." + r["name"] for r in state.get("resources", [])]
print("demo: the state (serial %s) holds: %s" % (state.get("serial"), ", ".join(names) or "nothing"))
' "$tmp/state.json"

note "cleaning up: stopping moto, removing $tmp"
kill "$moto_pid" 2>/dev/null || true
wait "$moto_pid" 2>/dev/null || true
moto_pid=""
rm -rf "$tmp"
tmp=""

section "Done in $(($(date +%s) - started)) s"
note "terraform ran under $role_arn with credentials breakglass obtained as Alice and kept fresh;"
note "the state is in s3://$bucket/$state_key and every run is in the audit trail."
