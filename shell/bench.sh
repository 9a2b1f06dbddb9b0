#!/usr/bin/env bash
# Measures what the `terraform` shim costs when break-glass mode is off.
#
# Three commands, each `terraform version` against a trivial `terraform` that exits 0:
#   direct : the trivial terraform itself
#   shim   : through breakglass-shim linked as `terraform` (walks up to a
#            .breakglass.toml with enabled = false, parses it, searches PATH, execs)
#   full   : through the full `breakglass` binary linked as `terraform` (same work,
#            but the binary that carries the management CLI and the AWS SDK: why the
#            small shim exists). Both binaries' sizes are printed with the figures.
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

echo "bench: cargo build --release (target: $target)" >&2
CARGO_TARGET_DIR=$target bash "$repo/shell/build.sh" --quiet
shim_bin=$target/release/breakglass-shim
full_bin=$target/release/breakglass

work=$(mktemp -d "${TMPDIR:-/tmp}/breakglass-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/real" "$work/shim" "$work/full" "$work/home" "$work/json"

# The trivial terraform: a static C program that returns 0 (or /bin/true without gcc).
printf 'int main(void) { return 0; }\n' > "$work/tiny.c"
if ! { gcc -O2 -static -o "$work/real/terraform" "$work/tiny.c" 2>/dev/null ||
       gcc -O2 -o "$work/real/terraform" "$work/tiny.c" 2>/dev/null; }; then
  cp /bin/true "$work/real/terraform"
fi
ln -s "$shim_bin" "$work/shim/terraform"
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
names=(direct shim full)
declare -A cmd=(
  [direct]="$work/real/terraform version"
  [shim]="$work/shim/terraform version"
  [full]="$work/full/terraform version"
)
declare -A path=(
  [direct]="$work/real:/usr/bin:/bin"
  [shim]="$work/shim:$work/real:/usr/bin:/bin"
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
  # Rotate the order each round: direct shim full, shim full direct, ...
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
names = ["direct", "shim", "full"]
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
print(f"shim adds {summary['shim']['minus_direct_ms']:.3f} ms "
      f"({summary['shim']['ratio_to_direct']:.2f}x direct); "
      f"the full binary adds {summary['full']['minus_direct_ms']:.3f} ms "
      f"({summary['full_over_shim']:.2f}x the shim)")
print(f"JSON: {out}")
PY
for b in "$shim_bin" "$full_bin"; do
  printf 'size: %-16s %8d KiB\n' "$(basename "$b")" "$(($(stat -c %s "$b") / 1024))"
done
