"""Where a run's wall time went, from its JUnit file (the started_at/ended_at/worker properties every check
carries): the check that ended last, what ran before it on its worker, and the sum of all check times.

Usage: python benchmarks/critical_path.py reports/<run id>/junit.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def main(path: str) -> None:
    checks = []
    for tc in ET.parse(path).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        if "started_at" not in props or "ended_at" not in props:
            continue
        name = f"{tc.get('classname', '').split('.')[-1]}::{tc.get('name')}"
        checks.append((float(props["started_at"]), float(props["ended_at"]), props.get("worker", "?"), name))
    if not checks:
        print("no timed checks in", path)
        return
    t0 = min(c[0] for c in checks)
    total = sum(end - start for start, end, _, _ in checks)
    last = max(checks, key=lambda c: c[1])
    per_worker: dict[str, list[tuple[float, float, str, str]]] = defaultdict(list)
    for c in checks:
        per_worker[c[2]].append(c)
    print(f"checks: {len(checks)}; sum of check times {total:.1f}s; first start to last end {last[1] - t0:.1f}s")
    print(f"ended last: {last[3]} on {last[2]} at +{last[1] - t0:.1f}s (took {last[1] - last[0]:.1f}s)")
    print(f"critical path ({last[2]}), longest steps:")
    chain = sorted(per_worker[last[2]], key=lambda c: c[1] - c[0], reverse=True)[:6]
    for start, end, _, name in sorted(chain):
        print(f"  +{start - t0:5.1f}s .. +{end - t0:5.1f}s  {end - start:5.1f}s  {name}")
    for worker, cs in sorted(per_worker.items()):
        busy = sum(e - s for s, e, _, _ in cs)
        print(f"  {worker}: {len(cs)} checks, busy {busy:.1f}s, ended +{max(e for _, e, _, _ in cs) - t0:.1f}s")


if __name__ == "__main__":
    main(sys.argv[1])
