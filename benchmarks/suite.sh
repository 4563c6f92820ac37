#!/usr/bin/env bash
# The whole suite's wall time on the local cluster, as `make conformance` runs it (WORKERS, default 4, loadfile):
# RUNS runs (default 3) for each node count (default 2), each run's wall time, the medians of wall time and CPU
# seconds, and for the median run the critical path (the check that ended last and what its worker spent time on) and
# the sum of check times. Under each run's line, the work it asked of the cluster, which this machine's speed does not
# move (benchmarks/work.py): objects created, exec sessions, API requests, processes started, policy probes.
# The cluster is brought to each node count first (`netconform cluster up --nodes N`); each run starts when the
# previous run's namespaces are gone and the machine is quiet. Each run's line gives the CPU the machine spent during
# it (user + nice + system from /proc/stat: the cluster and the suite), the CPU time its host gave other guests while
# it had work (`stolen`: steal in /proc/stat) and the machine's own speed just before it (`reference` in
# benchmarks/quiet.sh, in ms; 33 on a quiet morning here), since this machine's speed moves by the minute: a run's
# wall time is read beside them.
# Usage: benchmarks/suite.sh [RUNS] [NODES ...]     e.g. benchmarks/suite.sh 3 1 2
# MARK selects checks by marker (MARK="not networkpolicy"), ARGS adds plain pytest arguments, UP_ARGS arguments of
# `cluster up` (UP_ARGS=--network-policy=none).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
runs=${1:-3}; shift || true
node_counts=("${@:-2}")
workers=${WORKERS:-4}
source benchmarks/quiet.sh
# A run's work is counted from `work.py start` to `stop` (benchmarks/work.py); an interrupted run's count is ended.
work=
trap 'if [[ -n $work ]]; then python3 benchmarks/work.py drop "$work"; rm -rf "$work"; fi; drop_kubecache' EXIT
# The middle line of its input by number (the lower of the two middle ones for an even count): a median.
middle() {
  local lines
  mapfile -t lines < <(sort -n)
  echo "${lines[$(( (${#lines[@]} - 1) / 2 ))]}"
}
scripts/bytecode  # every timed run starts with the suite compiled, as make conformance's does (see there)
for nodes in "${node_counts[@]}"; do
  netconform cluster up --recreate --nodes "$nodes" ${UP_ARGS:-} >/dev/null || exit 1
  export PATH="$(netconform cluster bin-dir):$PATH"
  kc=$(netconform cluster kubeconfig)
  results=()
  hz=$(getconf CLK_TCK)
  for i in $(seq "$runs"); do
    run="rbench$$n${nodes}i$i"
    # Each run starts on a quiet cluster, as a user's run does: the previous run's namespaces (and their pods) are
    # gone first, so a run is not timed while the cluster still tears down the one before it.
    kubectl --kubeconfig "$kc" wait --for=delete namespace -l netconform.io/run --timeout=120s >/dev/null 2>&1
    quiet; ref=$(reference); quiet
    work=$(mktemp -d); python3 benchmarks/work.py start "$work" --kubeconfig "$kc"
    busy=$(busy_ticks); steal=$(steal_ticks); start=$(date +%s.%N)
    summary=$(NETCONFORM_RUN_ID=$run pytest -q -p no:randomly --kube-config="$kc" -n "$workers" --dist loadfile \
      ${MARK:+-m "$MARK"} ${ARGS:-} 2>&1 | tail -1)
    busy=$(($(busy_ticks) - busy)); steal=$(($(steal_ticks) - steal))
    t=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
    cpu=$(python3 -c "print(f'{$busy / $hz:.1f}')"); stolen=$(python3 -c "print(f'{$steal / $hz:.1f}')")
    echo "$nodes node(s), run $i: ${t}s  CPU ${cpu}s  stolen ${stolen}s  reference loop ${ref} ms  $summary"
    echo "  $(python3 benchmarks/work.py stop "$work" --kubeconfig "$kc" --reports "reports/$run")"
    rm -rf "$work"; work=
    results+=("$t $run $ref $cpu")
  done
  median=$(printf '%s\n' "${results[@]}" | middle)
  refs=$(printf '%s\n' "${results[@]}" | awk '{print $3}' | sort -n | paste -sd/)
  # A run is CPU-bound on 2 cores: the CPU seconds it took are the cost a change moves, so their median too.
  mcpu=$(printf '%s\n' "${results[@]}" | awk '{print $4}' | middle)
  read -r mt mrun _ <<< "$median"
  echo "$nodes node(s): median ${mt}s of $runs runs, median CPU ${mcpu}s (workers $workers; reference loop $refs ms)"
  python3 benchmarks/critical_path.py "reports/$mrun/junit.xml"
done
