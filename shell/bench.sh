#!/usr/bin/env bash
# Measures what the `terraform` shim costs when break-glass mode is off, for the very
# files the documented install gives: it runs `shell/install.sh` into a scratch prefix
# and times the `terraform` link that install made.
#
# Four commands, each `terraform version` against a trivial `terraform` that exits 0:
#   direct : the trivial terraform itself
#   floor  : a tiny static C program that only execs the trivial terraform: the cost
#            of one exec, the least any shim can add
#   shim   : through the installed `terraform` link to breakglass-shim (walks up to a
#            .breakglass.toml with enabled = false, parses it, searches PATH, execs)
#   full   : through the full `breakglass` binary linked as `terraform` (same work,
#            but the binary that carries the management CLI and the AWS SDK: why the
#            small shim exists). Both binaries' sizes are printed with the figures.
# It prints each one's median, what the shim adds over direct, and that against what
# the floor adds (the ratio; the target is under 2x, and under 1 ms added).
#
# hyperfine runs without a shell (-N). The three commands alternate in rounds so that
# drift on a busy machine hits them alike; the medians are taken over all runs.
#
#   shell/bench.sh                      # build release, run, print medians and ratios
#   ROUNDS=10 RUNS=100 WARMUP=20        # the defaults
#   BENCH_JSON=path                     # where the JSON goes (default: <target>/bench/shim-bench.json)
#
# The release build goes to $CARGO_TARGET_DIR if set, else <repo>/target. Timings are
# reported, never asserted.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
ROUNDS=${ROUNDS:-10}
RUNS=${RUNS:-100}
WARMUP=${WARMUP:-20}
target=${CARGO_TARGET_DIR:-$repo/target}
out_json=${BENCH_JSON:-$target/bench/shim-bench.json}

. "$repo/shell/need.sh"
need_commands bench hyperfine || exit 1
hyperfine=$(command -v hyperfine)
python=$(command -v python3)

work=$(mktemp -d "${TMPDIR:-/tmp}/breakglass-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/real" "$work/floor" "$work/full" "$work/home" "$work/json"

echo "bench: shell/install.sh $work/prefix (target: $target)" >&2
CARGO_TARGET_DIR=$target bash "$repo/shell/install.sh" "$work/prefix" >/dev/null 2>"$work/install.log" || {
  cat "$work/install.log" >&2
  exit 1
}
shim_dir=$work/prefix/share/breakglass/shims
shim_bin=$work/prefix/bin/breakglass-shim
full_bin=$work/prefix/bin/breakglass
[ "$(readlink -f "$shim_dir/terraform")" = "$(readlink -f "$shim_bin")" ] || {
  echo "bench: the install did not link $shim_dir/terraform to $shim_bin" >&2
  exit 1
}

# The trivial terraform: a static C program that returns 0; the floor: a static C
# program that only execs it.
need_commands bench gcc || exit 1
printf 'int main(void) { return 0; }\n' > "$work/tiny.c"
printf '#include <unistd.h>\nint main(int argc, char **argv) { (void)argc; execv(REAL, argv); return 127; }\n' > "$work/floor.c"
gcc -O2 -static -o "$work/real/terraform" "$work/tiny.c"
gcc -O2 -static -DREAL="\"$work/real/terraform\"" -o "$work/floor/terraform" "$work/floor.c"
ln -s "$full_bin" "$work/full/terraform"

# A project with the config two directories up, so the walk-up and parse happen.
proj=$work/proj
mkdir -p "$proj/stacks/app"
cat > "$proj/.breakglass.toml" <<'TOML'
enabled = false
region = "eu-west-1"

[role]
arn = "arn:aws:iam::111111111111:role/deploy"
read_arn = "arn:aws:iam::111111111111:role/read"
duration = "1h"

[workspaces.prod]
arn = "arn:aws:iam::222222222222:role/deploy"

[stacks."network/*"]
arn = "arn:aws:iam::333333333333:role/network"
TOML
rundir=$proj/stacks/app

# Each command runs with its own link directory first on PATH, as installed, and a
# clean environment.
names=(direct floor shim full)
declare -A cmd=(
  [direct]="$work/real/terraform version"
  [floor]="$work/floor/terraform version"
  [shim]="$shim_dir/terraform version"
  [full]="$work/full/terraform version"
)
declare -A path=(
  [direct]="$work/real:/usr/bin:/bin"
  [floor]="$work/floor:$work/real:/usr/bin:/bin"
  [shim]="$shim_dir:$work/real:/usr/bin:/bin"
  [full]="$work/full:$work/real:/usr/bin:/bin"
)
run_env() { # NAME CMD...
  local name=$1; shift
  (cd "$rundir" && env -i HOME="$work/home" PATH="${path[$name]}" "$@")
}

# Each must actually reach the trivial terraform (exit 0, not the shim's 125).
for n in "${names[@]}"; do
  # shellcheck disable=SC2086
  if ! run_env "$n" ${cmd[$n]} >/dev/null 2>"$work/err"; then
    echo "bench: '$n' (${cmd[$n]}) failed:" >&2
    cat "$work/err" >&2
    exit 1
  fi
done

echo "bench: $ROUNDS rounds x $RUNS runs (+$WARMUP warmup) of each, alternating" >&2
for ((r = 0; r < ROUNDS; r++)); do
  # Rotate the order each round: direct floor shim full, floor shim full direct, ...
  for ((i = 0; i < ${#names[@]}; i++)); do
    n=${names[$(((i + r) % ${#names[@]}))]}
    run_env "$n" "$hyperfine" -N --style none --warmup "$WARMUP" --runs "$RUNS" \
      --command-name "$n" --export-json "$work/json/$r-$n.json" "${cmd[$n]}" >/dev/null
  done
  printf 'bench: round %d/%d done\n' "$((r + 1))" "$ROUNDS" >&2
done

mkdir -p "$(dirname "$out_json")"
"$python" - "$work/json" "$out_json" "$ROUNDS" "$RUNS" <<'PY'
import glob, json, os, statistics, sys

src, out, rounds, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = ["direct", "floor", "shim", "full"]
times = {n: [] for n in names}
for f in sorted(glob.glob(os.path.join(src, "*.json"))):
    for res in json.load(open(f))["results"]:
        times[res["command"]].extend(res["times"])

def ms(s):
    return s * 1000.0

summary = {}
for n in names:
    t = sorted(times[n])
    q = statistics.quantiles(t, n=4)
    summary[n] = {
        "runs": len(t),
        "median_ms": ms(statistics.median(t)),
        "q1_ms": ms(q[0]),
        "q3_ms": ms(q[2]),
        "mean_ms": ms(statistics.fmean(t)),
        "min_ms": ms(t[0]),
    }
base = summary["direct"]["median_ms"]
for n in names:
    summary[n]["minus_direct_ms"] = summary[n]["median_ms"] - base
    summary[n]["ratio_to_direct"] = summary[n]["median_ms"] / base
summary["full_over_shim"] = summary["full"]["median_ms"] / summary["shim"]["median_ms"]
floor_adds = summary["floor"]["minus_direct_ms"]
summary["shim_over_floor"] = summary["shim"]["minus_direct_ms"] / floor_adds if floor_adds > 0 else float("inf")

json.dump(
    {"rounds": rounds, "runs_per_round": runs, "summary": summary,
     "times_s": times},
    open(out, "w"), indent=1)

print(f"{'command':<8} {'runs':>6} {'median':>10} {'IQR':>19} {'- direct':>10} {'ratio':>7}")
for n in names:
    s = summary[n]
    print(f"{n:<8} {s['runs']:>6} {s['median_ms']:>7.3f} ms "
          f"[{s['q1_ms']:>6.3f}, {s['q3_ms']:>6.3f}] ms "
          f"{s['minus_direct_ms']:>+7.3f} ms {s['ratio_to_direct']:>6.2f}x")
print(f"shim adds {summary['shim']['minus_direct_ms']:.3f} ms (target < 1 ms); "
      f"one exec (the floor) adds {summary['floor']['minus_direct_ms']:.3f} ms; "
      f"shim/floor = {summary['shim_over_floor']:.2f}x (target < 2x)")
print(f"the full binary adds {summary['full']['minus_direct_ms']:.3f} ms "
      f"({summary['full_over_shim']:.2f}x the shim's total)")
print(f"JSON: {out}")
PY
for b in "$shim_bin" "$full_bin"; do
  printf 'size: %-16s %9d bytes (%d KiB)\n' "$(basename "$b")" "$(stat -c %s "$b")" "$(($(stat -c %s "$b") / 1024))"
done
