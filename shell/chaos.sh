#!/usr/bin/env bash
# Fault trials: the real terraform (the test bed's), through the shim, applying against
# an S3 backend with `use_lockfile = true` in moto with IAM enforcement on, while a
# local-exec sleeps; mid-apply each trial injects one fault:
#
#   hang-up     a pty session: close the master and SIGHUP the job's process group
#               (the kernel, then the user's shell, as a dropped SSH session does)
#   ctrl-c      Ctrl-C typed in a pty (0x03 written to the master)
#   term-shim   SIGTERM to the shim's pid only (no terminal)
#   term-group  SIGTERM to the whole process group, as GNU `timeout -s TERM N` sends it
#               (no terminal, as in CI)
#   sts-outage  STS unreachable for a while, with renewals due during the outage
#
# During every trial a client polls the credential endpoint. After each trial the script
# counts: the `.tflock` objects left in the bucket, duplicate interrupts (terraform
# printing "Interrupt received" more than once, or "Two interrupts received"), expired
# credentials served (a 200 whose Expiration was already past by the local clock), and
# runs missing from the audit trail (each trial must add exactly one record to
# $XDG_DATA_HOME/breakglass/audit.jsonl). Then it deletes any lock (with admin keys), so
# that trials are independent, and prints one table. The target is all zeros.
#
#   bash shell/chaos.sh                       # 10 trials of each fault
#   TRIALS=3 FAULTS="ctrl-c sts-outage" bash shell/chaos.sh
#   BREAKGLASS_BIN_DIR=DIR bash shell/chaos.sh  # breakglass + breakglass-shim from DIR
#                                               # (default: `cargo build`, target/debug)
#   KEEP=1 bash shell/chaos.sh                # keep the work directory (kept anyway
#                                             # when a count is not zero)
# Knobs (seconds): SLEEP (local-exec, default 6), FAULT_AFTER (fault this long after the
# local-exec starts, default 2), STS_DOWN (outage length, default 10).
#
# Exit 0: every count is zero. 1: some count is not. 2: some trial did not test what it
# should (the fault did not land while the lock was held, a run hung, ...).
# Needs nothing but loopback. Python comes from the test bed's venv.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
started_at=$(date +%s)

TRIALS=${TRIALS:-10}
SLEEP=${SLEEP:-6}
FAULT_AFTER=${FAULT_AFTER:-2}
STS_DOWN=${STS_DOWN:-10}
FAULTS=${FAULTS:-hang-up ctrl-c term-shim term-group sts-outage}
# The longest one run may take before the trial counts as hung and is killed.
RUN_LIMIT=${RUN_LIMIT:-120}

say() { printf 'chaos: %s\n' "$*" >&2; }
die() {
  printf 'chaos: FAILED: %s\n' "$*" >&2
  exit 2
}

for f in $FAULTS; do
  case "$f" in hang-up | ctrl-c | term-shim | term-group | sts-outage) ;;
  *) die "unknown fault '$f' in FAULTS (known: hang-up ctrl-c term-shim term-group sts-outage)" ;;
  esac
done
for c in setsid timeout pgrep; do
  command -v "$c" >/dev/null || die "$c is missing: install util-linux, coreutils and procps"
done

# --- binaries and the test bed ----------------------------------------------------------
if [ -n "${BREAKGLASS_BIN_DIR:-}" ]; then
  bin_dir=$(cd "$BREAKGLASS_BIN_DIR" && pwd) || die "BREAKGLASS_BIN_DIR=$BREAKGLASS_BIN_DIR is not a directory"
else
  say "cargo build (debug)"
  cargo build --quiet </dev/null || die "cargo build failed"
  target_dir=$(cargo metadata --format-version 1 --no-deps </dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  bin_dir="${target_dir:-$repo/target}/debug"
fi
for b in breakglass breakglass-shim; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing: run \`cargo build\`, or point BREAKGLASS_BIN_DIR at it"
done
bed=$(bash shell/testbed.sh </dev/null | tail -n 1) || die "the test bed could not be built (bash shell/testbed.sh)"
py="$bed/venv/bin/python3"
helper="$repo/shell/chaos_helper.py"
say "binaries: $bin_dir; test bed: $bed"

work=$(mktemp -d "${TMPDIR:-/tmp}/breakglass-chaos.XXXXXX")
moto_pid=""
relay_pid=""
keep=${KEEP:-}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [ -n "$keep" ]; then
    say "work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
# `until_true SECONDS CMD...`: runs CMD every 0.1 s until it succeeds; fails after SECONDS.
until_true() {
  local limit=$1
  shift
  local end
  end=$(awk -v n="$(now)" -v l="$limit" 'BEGIN { printf "%.3f", n + l }')
  until "$@"; do
    awk -v n="$(now)" -v e="$end" 'BEGIN { exit !(n > e) }' && return 1
    sleep 0.1
  done
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- moto with IAM enforcement on ----------------------------------------------------------
port=$(free_port)
endpoint="http://127.0.0.1:$port"
"$bed/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$work/moto.log" 2>&1 &
moto_pid=$!
until_true 30 listening "$port" || die "moto did not listen on $endpoint: $(tail -n 5 "$work/moto.log")"
"$py" tests/support/moto_admin.py setup "$endpoint" </dev/null >"$work/bed.json" || die "moto_admin.py setup failed"
"$py" tests/support/moto_admin.py enforce "$endpoint" </dev/null >/dev/null || die "cannot switch IAM enforcement on"
field() { "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$work/bed.json" "$1"; }
alice_key=$(field 'd["users"]["alice"]["key"]')
alice_secret=$(field 'd["users"]["alice"]["secret"]')
admin_key=$(field 'd["users"]["admin"]["key"]')
admin_secret=$(field 'd["users"]["admin"]["secret"]')
deploy=$(field 'd["roles"]["deploy"]')
s3admin() { "$py" "$helper" s3 "$endpoint" "$admin_key" "$admin_secret" "$@" </dev/null; }
say "moto on $endpoint (pid $moto_pid), IAM enforcement on"

# STS for the sts-outage trials: a relay in front of the same moto, which is stopped and
# started again. Not a second moto: the role keys a second moto process issues are
# unknown to the bucket's moto, which refuses them under IAM enforcement
# (InvalidAccessKeyId), and the bucket's moto must keep its users. Killing the relay
# makes STS unreachable exactly as a dead server does (pooled connections reset, new
# ones refused); started again, STS answers with every user, key and role intact.
sts_port=$(free_port)
sts_endpoint="http://127.0.0.1:$sts_port"
relay_up() {
  "$py" "$helper" relay "$sts_port" "$port" </dev/null >>"$work/relay.log" 2>&1 &
  relay_pid=$!
  until_true 10 listening "$sts_port" || die "the STS relay did not listen on $sts_port"
}
relay_down() {
  kill "$relay_pid" 2>/dev/null || true
  wait "$relay_pid" 2>/dev/null || true
  relay_pid=""
}
case " $FAULTS " in *" sts-outage "*) relay_up ;; esac

# --- the sandbox ---------------------------------------------------------------------------
mkdir -p "$work/home" "$work/shims" "$work/real"
ln -s "$bin_dir/breakglass-shim" "$work/shims/terraform"
ln -s "$bed/bin/terraform" "$work/real/terraform"
: >"$work/terraformrc"
audit="$work/data/breakglass/audit.jsonl"
run_env=(
  "HOME=$work/home"
  "PATH=$work/shims:$work/real:/usr/bin:/bin"
  "XDG_CACHE_HOME=$work/cache" "XDG_DATA_HOME=$work/data" "XDG_STATE_HOME=$work/state"
  "XDG_CONFIG_HOME=$work/config"
  "TF_CLI_CONFIG_FILE=$work/terraformrc" "TF_IN_AUTOMATION=1" "CHECKPOINT_DISABLE=1"
  "BREAKGLASS_BIN=$bin_dir/breakglass"
  "AWS_ENDPOINT_URL=$endpoint" "AWS_REGION=us-east-1" "AWS_EC2_METADATA_DISABLED=true"
  "AWS_ACCESS_KEY_ID=$alice_key" "AWS_SECRET_ACCESS_KEY=$alice_secret"
  "USER=${USER:-$(id -un)}" "TERM=dumb" "LANG=C.UTF-8"
)
apply_args=(apply -auto-approve -input=false -no-color)

# `project FAULT`: a project whose apply holds the state lock while its local-exec
# touches STARTED, starts the endpoint poller (in its own session, so that no fault
# aimed at the run reaches it; it inherits terraform's environment, which holds the
# endpoint and its token), and sleeps. 15-minute sessions renewed 14m50s before
# expiry: the refresher renews about every 10 s.
project() {
  local fault=$1 sleep=$SLEEP dir="$work/p-$1"
  [ "$fault" = sts-outage ] && sleep=$((FAULT_AFTER + STS_DOWN + 4))
  mkdir -p "$dir"
  cat >"$dir/.breakglass.toml" <<EOF
enabled = true
region = "us-east-1"
[role]
arn = "$deploy"
duration = "15m"
refresh_before = "14m50s"
EOF
  cat >"$dir/act.sh" <<EOF
touch "$dir/STARTED"
setsid "$py" "$helper" poll "$dir/polled.jsonl" "$dir/STOP" 300 </dev/null >/dev/null 2>&1 &
sleep $sleep
EOF
  cat >"$dir/main.tf" <<EOF
terraform {
  backend "s3" {
    bucket                      = "tfstate"
    key                         = "chaos/$fault/terraform.tfstate"
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
    command = "sh $dir/act.sh"
  }
}
EOF
  (cd "$dir" && env -i "${run_env[@]}" $(extra_env "$fault") terraform init -input=false -no-color) \
    </dev/null >"$work/init-$fault.log" 2>&1 || die "terraform init for $fault failed: $(tail -n 20 "$work/init-$fault.log")"
}
# The environment a fault's runs add (one VAR=VALUE a word).
extra_env() {
  case "$1" in sts-outage) echo "AWS_ENDPOINT_URL_STS=$sts_endpoint" ;; esac
}

audit_lines() { if [ -f "$audit" ]; then wc -l <"$audit"; else echo 0; fi; }
pid_of_file() { [ -s "$1" ] && cat "$1"; }
# Is any process of session SID still there? (The poller has its own session.)
session_alive() { pgrep -s "$1" >/dev/null 2>&1; }

# Totals per fault.
declare -A T_TRIALS T_LOCKS T_DUP T_EXPIRED T_MISSING T_BAD
bad_notes=()

# `trial FAULT N`: one run with one fault; adds to the totals.
trial() {
  local fault=$1 n=$2 dir="$work/p-$1" t="$work/t-$1-$2"
  mkdir -p "$t"
  rm -f "$dir/STARTED" "$dir/STOP" "$dir/polled.jsonl" "$dir/errored.tfstate"
  local before
  before=$(audit_lines)
  local -a cmd=(env -i "${run_env[@]}" "BREAKGLASS_ENDPOINT_LOG=$t/endpoint.log")
  # shellcheck disable=SC2207
  cmd+=($(extra_env "$fault") terraform "${apply_args[@]}")

  # Start the run. `leader` is the pid whose exit ends the run, `sid` its session.
  local leader sid="" code=""
  case "$fault" in
    hang-up | ctrl-c)
      local mode=hangup
      [ "$fault" = ctrl-c ] && mode=ctrlc
      (cd "$dir" && exec "$py" "$helper" pty "$mode" "$t/pty.json" "$t/GO" "$RUN_LIMIT" "$t/out" \
        /usr/bin/env -i "${run_env[@]}" "BREAKGLASS_ENDPOINT_LOG=$t/endpoint.log" \
        terraform "${apply_args[@]}") </dev/null >"$t/driver.log" 2>&1 &
      leader=$!
      until_true 10 pid_of_file "$t/pty.json.pid" >/dev/null || true
      sid=$(cat "$t/pty.json.pid" 2>/dev/null || true)
      ;;
    term-group)
      # No controlling terminal (setsid), as in CI: then breakglass starts terraform in
      # a process group of its own, and a signal to the shim's group reaches terraform
      # only through the shim. (With a terminal, breakglass shares terraform's process
      # group, so that a typed Ctrl-C reaches terraform from the kernel and job control
      # (fg, bg, Ctrl-Z) acts on both; then a signal sent to the whole group reaches
      # terraform directly too.)
      # GNU timeout's expiry is its SIGALRM (coreutils timeout.c treats SIGALRM as the
      # timer firing): on it, it sends SIGTERM to the child, then to its whole process
      # group (then SIGCONT to both). The script sends timeout SIGALRM at the chosen
      # moment, so the expiry lands mid-apply whatever the machine's speed.
      (cd "$dir" && exec setsid timeout -s TERM $((RUN_LIMIT * 2)) "${cmd[@]}") </dev/null >"$t/out" 2>&1 &
      leader=$!
      sid=$leader
      ;;
    term-shim | sts-outage)
      (cd "$dir" && exec setsid "${cmd[@]}") </dev/null >"$t/out" 2>&1 &
      leader=$!
      sid=$leader
      ;;
  esac

  local problem=""
  local locks_during=0
  if until_true 90 test -e "$dir/STARTED"; then
    local t0
    t0=$(now)
    locks_during=$(s3admin locks tfstate | grep -c . || true)
    sleep "$(awk -v t0="$t0" -v n="$(now)" -v a="$FAULT_AFTER" 'BEGIN { d = t0 + a - n; printf "%.3f", (d > 0 ? d : 0) }')"
    [ "$locks_during" -ge 1 ] || problem="no lock was held when the fault came"
    # The fault.
    case "$fault" in
      hang-up | ctrl-c) : >"$t/GO" ;;
      term-shim) kill -TERM "$leader" ;;
      term-group) kill -ALRM "$leader" ;;
      sts-outage)
        relay_down
        sleep "$STS_DOWN"
        relay_up
        ;;
    esac
  else
    problem="the local-exec never started"
  fi

  # The end of the run, then of every process of its session.
  if ! until_true "$RUN_LIMIT" eval '! kill -0 '"$leader"' 2>/dev/null'; then
    problem="${problem:+$problem; }the run did not end within ${RUN_LIMIT} s"
    kill -KILL "$leader" 2>/dev/null || true
  fi
  wait "$leader" 2>/dev/null && code=0 || code=$?
  if [ -f "$t/pty.json" ]; then
    code=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["code"])' "$t/pty.json")
  fi
  if [ -n "$sid" ] && ! until_true 30 eval '! session_alive '"$sid"; then
    problem="${problem:+$problem; }processes of the run outlived it: $(pgrep -s "$sid" | tr '\n' ' ')"
    # shellcheck disable=SC2046
    kill -KILL $(pgrep -s "$sid") 2>/dev/null || true
  fi
  : >"$dir/STOP"
  until_true 15 grep -q '"done"' "$dir/polled.jsonl" 2>/dev/null ||
    problem="${problem:+$problem; }the endpoint poller did not finish"
  cp "$dir/polled.jsonl" "$t/" 2>/dev/null || true

  # The counts.
  local locks dup received two requests served expired not_served after missing=0
  locks=$(s3admin locks tfstate)
  for k in $locks; do s3admin delete tfstate "$k" >/dev/null; done
  locks=$(printf '%s' "$locks" | grep -c . || true)
  read -r received two < <("$py" "$helper" interrupts "$t/out")
  dup=0
  [ "$received" -gt 1 ] && dup=$((received - 1))
  [ "$two" -eq 1 ] && [ "$dup" -eq 0 ] && dup=1
  read -r requests served expired not_served < <("$py" "$helper" polled "$t/polled.jsonl")
  [ "$served" -gt 0 ] || problem="${problem:+$problem; }the poller was never served"
  after=$(audit_lines)
  [ $((after - before)) -lt 1 ] && missing=$((1 - (after - before)))
  local rec="none"
  if [ $((after - before)) -ge 1 ]; then
    rec=$(tail -n 1 "$audit" | "$py" -c 'import json, sys; r = json.load(sys.stdin); print("exit_code %s, hangup %s" % (r["exit_code"], str(r.get("hangup")).lower()))')
  fi
  [ $((after - before)) -gt 1 ] && problem="${problem:+$problem; }$((after - before)) audit records for one run"
  local errored=""
  [ -e "$dir/errored.tfstate" ] && errored=", errored.tfstate left"
  [ "$fault" = term-group ] && [ "$code" != 124 ] && problem="${problem:+$problem; }timeout exited $code, not 124"
  # The outage must have cost a renewal (the refresher warns once per run).
  [ "$fault" = sts-outage ] && ! grep -q 'could not renew' "$t/out" &&
    problem="${problem:+$problem; }no renewal failed during the outage"

  say "$fault $n/$TRIALS: exit $code, lock held at the fault $locks_during, locks left $locks, interrupts received $received (two: $two), polled $requests (served $served, expired $expired, not served $not_served), audit +$((after - before)) ($rec)$errored${problem:+ -- PROBLEM: $problem}"
  T_TRIALS[$fault]=$((${T_TRIALS[$fault]:-0} + 1))
  T_LOCKS[$fault]=$((${T_LOCKS[$fault]:-0} + locks))
  T_DUP[$fault]=$((${T_DUP[$fault]:-0} + dup))
  T_EXPIRED[$fault]=$((${T_EXPIRED[$fault]:-0} + expired))
  T_MISSING[$fault]=$((${T_MISSING[$fault]:-0} + missing))
  if [ -n "$problem" ]; then
    T_BAD[$fault]=$((${T_BAD[$fault]:-0} + 1))
    bad_notes+=("$fault $n/$TRIALS: $problem ($t)")
  fi
  rm -f "$dir/errored.tfstate"
}

for fault in $FAULTS; do
  say "$fault: terraform init"
  project "$fault"
  for n in $(seq 1 "$TRIALS"); do trial "$fault" "$n"; done
done

# --- the table -------------------------------------------------------------------------------
nonzero=0
printf '\n%-11s | %6s | %10s | %20s | %26s | %31s\n' fault trials "locks left" "duplicate interrupts" \
  "expired credentials served" "runs missing from audit trail"
printf '%s\n' "------------|--------|------------|----------------------|----------------------------|--------------------------------"
for fault in $FAULTS; do
  l=${T_LOCKS[$fault]:-0} d=${T_DUP[$fault]:-0} e=${T_EXPIRED[$fault]:-0} m=${T_MISSING[$fault]:-0}
  printf '%-11s | %6s | %10s | %20s | %26s | %31s\n' "$fault" "${T_TRIALS[$fault]:-0}" "$l" "$d" "$e" "$m"
  [ $((l + d + e + m)) -eq 0 ] || nonzero=1
done
printf '\nwall time: %d s\n' $(($(date +%s) - started_at))

rc=0
if [ "${#bad_notes[@]}" -gt 0 ]; then
  printf '\ntrials that did not test what they should (%d):\n' "${#bad_notes[@]}"
  printf '  %s\n' "${bad_notes[@]}"
  rc=2
  keep=1
fi
if [ "$nonzero" -ne 0 ]; then
  printf '\nsome counts are not zero: see the lines above the table for each trial\n'
  rc=1
  keep=1
fi
exit "$rc"
