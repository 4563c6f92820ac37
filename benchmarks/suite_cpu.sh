#!/usr/bin/env bash
# One whole-suite run on the running local cluster (as benchmarks/suite.sh runs it: -n WORKERS, loadfile), and the
# CPU the machine spent during it (user + nice + system from /proc/stat, every process: the cluster and the suite),
# and the CPU time its host took from it meanwhile (`stolen`: steal in /proc/stat; this is a virtual machine).
# On a 2-core machine the suite is CPU-bound, so CPU seconds per run tell a change's cost better than wall time.
# Usage: benchmarks/suite_cpu.sh [RUNS]
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export PATH="$(netconform cluster bin-dir):$PATH"
kc=$(netconform cluster kubeconfig) || exit 1
source benchmarks/quiet.sh
trap drop_kubecache EXIT
scripts/bytecode  # the suite compiled first, as make conformance does
for i in $(seq "${1:-1}"); do
  measured_run "$kc" "run $i" pytest -q -p no:randomly --kube-config="$kc" -n "${WORKERS:-4}" --dist loadfile
done
