# Sourced by the benchmarks. kubectl keeps its discovery and HTTP caches in root's ~/.kube/cache unless told otherwise:
# a benchmark's go to a folder of its own instead (KUBECACHEDIR, read by kubectl, also when work.py runs it), removed
# by `drop_kubecache` in the script's EXIT trap. A KUBECACHEDIR the caller set is used and left alone.
if [[ -z ${KUBECACHEDIR:-} ]]; then
  KUBECACHEDIR=$(mktemp -d "${TMPDIR:-/tmp}/netconform-kubectl-cache.XXXXXX")
  export KUBECACHEDIR
  own_kubecache=$KUBECACHEDIR
fi
drop_kubecache() { if [[ -n ${own_kubecache:-} ]]; then rm -rf "$own_kubecache"; fi; }

# `quiet` waits (at most 60 s) until the machine is quiet, under a quarter of its CPU busy
# over a second. The namespaces of the run before are gone well before their pods' runtime, network and policy
# teardown is (measured: about 2 s more of both cores).
quiet() {
  local deadline=$((SECONDS + 60)) u n s i u2 n2 s2 i2
  while ((SECONDS < deadline)); do
    read -r _ u n s i _ < /proc/stat; sleep 1; read -r _ u2 n2 s2 i2 _ < /proc/stat
    (( 4 * (u2 + n2 + s2 - u - n - s) < (u2 + n2 + s2 + i2 - u - n - s - i) )) && return
  done
}

# The machine's own speed, to compare figures across days: this machine's CPU time for a fixed Python loop varies
# (the same suite code took 47 CPU-s per run one day and 60-74 on another). Best of 3, in ms.
reference() {
  python3 -c 'import timeit; print(round(min(timeit.repeat("sum(i*i for i in range(10**6))", number=3, repeat=3)) / 3 * 1000))'
}

# The machine's busy CPU ticks so far (user + nice + system, every process: the cluster and the suite), to subtract
# before a run from the count after it; `getconf CLK_TCK` ticks make a second.
busy_ticks() {
  local u n s
  read -r _ u n s _ < /proc/stat
  echo $((u + n + s))
}

# The ticks the hypervisor gave to other guests while this machine had work (`steal` in /proc/stat) so far: this
# machine is a virtual one, and in a 2-node run it lost 10-36% of a half second's CPU to its host in several half
# seconds (2026-12-04, sampled every 0.5 s), which no change here can move. A run's line shows it beside its CPU.
steal_ticks() {
  local st
  read -r _ _ _ _ _ _ _ _ st _ < /proc/stat
  echo "$st"
}

# One whole-suite run as the benchmarks time it: once the previous run's namespaces are gone (kubeconfig KC) and the
# machine is quiet, run the command, then print "LABEL: wall Ws, CPU Cs, stolen Ss  <its last line>" (CPU: busy
# ticks as busy_ticks counts them; stolen: steal_ticks).
# Usage: measured_run KC LABEL COMMAND...   (COMMAND may be a shell function)
measured_run() {
  local kc=$1 label=$2 hz busy0 steal0 start summary busy1 steal1
  shift 2
  hz=$(getconf CLK_TCK)
  kubectl --kubeconfig "$kc" wait --for=delete namespace -l netconform.io/run --timeout=120s >/dev/null 2>&1
  quiet
  busy0=$(busy_ticks); steal0=$(steal_ticks); start=$(date +%s.%N)
  summary=$("$@" 2>&1 | tail -1)
  busy1=$(busy_ticks); steal1=$(steal_ticks)
  python3 -c "print(f'$label: wall {$(date +%s.%N) - $start:.1f}s, CPU {($busy1 - $busy0) / $hz:.1f}s, stolen {($steal1 - $steal0) / $hz:.1f}s  $summary')"
}
