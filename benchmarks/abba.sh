#!/usr/bin/env bash
# A change's effect on the whole suite's wall time, on the running local cluster: the code at REV (a worktree of it)
# and the checkout as it is, run in turn, ABBA, after one warm-up run each (which also records each one's module
# costs for its scheduling, reports/costs.json). This machine's speed moves by the minute, so before and after are
# alternated on one cluster instead of measured an hour apart. Each run starts when the previous run's namespaces
# are gone and the machine is quiet, as in suite.sh; each line gives the wall time, the machine's CPU seconds
# (user + nice + system), the CPU its host took from it (stolen) and pytest's summary (measured_run, quiet.sh); the
# last two lines give each side's median wall time and CPU over its measured runs, the warm-ups left out.
# Usage: benchmarks/abba.sh REV [ROUNDS]     e.g. benchmarks/abba.sh HEAD~1 2   (2 rounds: 4 runs each)
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: benchmarks/abba.sh REV [ROUNDS]" >&2; exit 2; }
rev=$(git rev-parse --verify --quiet "$1^{commit}") || { echo "abba.sh: no commit $1" >&2; exit 2; }
rounds=${2:-2}
export PATH="$PWD/.venv/bin:$PATH"
export PATH="$(netconform cluster bin-dir):$PATH"
kc=$(netconform cluster kubeconfig) || exit 1
source benchmarks/quiet.sh
here=$PWD
base=$(mktemp -d "${TMPDIR:-/tmp}/netconform-abba.XXXXXX")
trap 'git -C "$here" worktree remove --force "$base" >/dev/null 2>&1; rm -rf "$base"; drop_kubecache' EXIT
git worktree add -q --detach "$base" "$rev" || exit 1
# Both compiled before their runs (scripts/bytecode): a worktree without its __pycache__ would compile the suite in
# each of its runs' five processes, about 0.25 CPU-s each, and look slower than it is.
scripts/bytecode
scripts/bytecode "$base"
suite_in() {  # DIR: its own modules first on the import path (the installed package points at this checkout)
  (cd "$1" && PYTHONPATH="$1" pytest -q -p no:randomly --kube-config="$kc" -n "${WORKERS:-4}" --dist loadfile)
}
run() {  # label round
  local dir=$here
  [ "$1" = before ] && dir=$base
  local line
  line=$(measured_run "$kc" "$1 ($2)" suite_in "$dir")
  echo "$line"
  [ "$2" = warm-up ] || measured+=("$line")
}
measured=()
# Each side's median wall time and CPU over its measured runs (warm-ups left out), and their ranges.
summary() {
  printf '%s\n' "${measured[@]}" | python3 -c '
import re, statistics, sys
runs = {"before": [], "after": []}
for line in sys.stdin:
    m = re.match(r"(before|after) \(\d+\): wall ([\d.]+)s, CPU ([\d.]+)s", line)
    if m:
        runs[m.group(1)].append((float(m.group(2)), float(m.group(3))))
for side, got in runs.items():
    if got:
        walls, cpus = [w for w, _ in got], [c for _, c in got]
        print(f"{side}: median wall {statistics.median(walls):.1f}s ({min(walls):.1f}-{max(walls):.1f}), "
              f"median CPU {statistics.median(cpus):.1f}s ({min(cpus):.1f}-{max(cpus):.1f}) of {len(got)} runs")
'
}
echo "before: $(git log --oneline -1 "$rev"); after: the checkout ($(git log --oneline -1 HEAD)$(git diff --quiet HEAD || echo ', with uncommitted changes'))"
run before warm-up; run after warm-up
for r in $(seq "$rounds"); do run before "$r"; run after "$r"; run after "$r"; run before "$r"; done
summary
