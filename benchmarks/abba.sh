#!/usr/bin/env bash
# A change's effect on the whole suite's wall time, on the running local cluster: the code at REV (a worktree of it)
# and the checkout as it is, run in turn, ABBA, after one warm-up run each (which also records each one's module
# costs for its scheduling, reports/costs.json). This machine's speed moves by the minute, so before and after are
# alternated on one cluster instead of measured an hour apart. Each run starts when the previous run's namespaces
# are gone and the machine is quiet, as in suite.sh; each line gives the wall time, the machine's CPU seconds
# (user + nice + system), the CPU its host took from it (stolen) and pytest's summary (measured_run, quiet.sh).
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
  measured_run "$kc" "$1 ($2)" suite_in "$dir"
}
echo "before: $(git log --oneline -1 "$rev"); after: the checkout ($(git log --oneline -1 HEAD)$(git diff --quiet HEAD || echo ', with uncommitted changes'))"
run before warm-up; run after warm-up
for r in $(seq "$rounds"); do run before "$r"; run after "$r"; run after "$r"; run before "$r"; done
