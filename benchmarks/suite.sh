#!/usr/bin/env bash
# Wall time of the whole suite against the running local cluster: RUNS runs each serially and with WORKERS
# workers; prints every run and the median. Usage: benchmarks/suite.sh [RUNS] [WORKERS]
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export PATH="$(netconform cluster bin-dir):$PATH"
runs=${1:-3}; workers=${2:-4}; kc=$(netconform cluster kubeconfig)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for mode in serial parallel; do
  times=()
  for i in $(seq "$runs"); do
    args=(); [ "$mode" = parallel ] && args=(-n "$workers" --dist loadfile)
    start=$(date +%s.%N)
    summary=$(pytest -q -p no:randomly --kube-config="$kc" "${args[@]}" 2>&1 | tail -1)
    t=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
    ready=$(python3 - <<'PY'
import xml.etree.ElementTree as ET
try:
    props = [(tc.get("name"), p.get("value")) for tc in ET.parse("reports/junit.xml").iter("testcase")
             for p in tc.iter("property") if p.get("name") == "seconds_to_ready"]
    print(" ".join(f"{n.split('_')[2]}={v}s" for n, v in props))
except Exception:
    pass
PY
)
    echo "$mode run $i: ${t}s  $summary  certificate ready: $ready"
    times+=("$t")
  done
  printf '%s\n' "${times[@]}" | median | xargs printf "$mode median: %.1fs\n"
done
