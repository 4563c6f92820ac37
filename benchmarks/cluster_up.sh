#!/usr/bin/env bash
# `netconform cluster up` with warm caches, RUNS times from nothing (down first): time to "node Ready, CoreDNS
# answering, ingress serving, cert-manager ready", the median, and the cluster's resident memory.
# Usage: benchmarks/cluster_up.sh [NODES] [RUNS]
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
nodes=${1:-1}; runs=${2:-3}; times=()
for i in $(seq "$runs"); do
  netconform cluster down >/dev/null 2>&1
  start=$(date +%s.%N)
  netconform cluster up --nodes "$nodes" >/dev/null 2>&1 || { echo "up failed"; exit 1; }
  t=$(python3 -c "print(round($(date +%s.%N) - $start, 1))"); times+=("$t"); echo "run $i: ${t}s"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median: %.1fs\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
# Resident memory of every process of the cluster: our processes, shims and containers (by cgroup).
pids=$(python3 - <<'PY'
from netconform.cluster import cgroups, config, procs
layout = cgroups.host()
ps = set(procs.tracked_pids())
for n in config.nodes(config.MAX_NODES):
    ps.update(cgroups.pids(cgroups.dirs(layout, n.name)))
print(" ".join(map(str, sorted(ps))))
PY
)
rss=0; for p in $pids; do r=$(awk '/VmRSS/ {print $2}' /proc/$p/status 2>/dev/null); rss=$((rss + ${r:-0})); done
echo "resident memory: $((rss / 1024)) MiB over $(echo $pids | wc -w) processes"
