"""The run's diagnosis: from what passed and failed together, the layer most likely broken (and the node, or the
server, when one alone explains the failures). A pure function of the results; the terminal summary and the top of
the report print it."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from netconform.report.model import FAILED, PASSED, Cell, CheckResult, Run

#: Layers from the bottom up: a failure low down breaks what is built on it, so the lowest failing layer is named.
ORDER = (
    "pod network",
    "path MTU",
    "service proxy",
    "NodePort",
    "hostPort",
    "cluster DNS",
    "NetworkPolicy",
    "LoadBalancer",
    "ingress controller",
    "ingress TLS",
    "certificate issuance",
)

#: Each area's layer.
AREA_LAYERS = {
    "cni": "pod network",
    "crossnode": "pod network",
    "clusterip": "service proxy",
    "endpoints": "service proxy",
    "headless": "cluster DNS",
    "nodeport": "NodePort",
    "dns": "cluster DNS",
    "externalname": "cluster DNS",
    "networkpolicy": "NetworkPolicy",
    "loadbalancer": "LoadBalancer",
    "ingress": "ingress controller",
    "tls": "ingress TLS",
    "certmanager": "certificate issuance",
}

#: Checks whose layer is not their area's (fragment of the test function's name -> layer); first match wins.
CHECK_LAYERS = (
    ("test_crossnode_path_mtu", "path MTU"),
    ("test_crossnode_clusterip", "service proxy"),
    ("test_crossnode_nodeport", "NodePort"),
    ("test_nodeport_host_port", "hostPort"),
    ("test_endpoints_selectorless_headless", "cluster DNS"),
    ("test_headless_service_has_no_cluster_ip", "service proxy"),
    ("test_headless_endpoints_equal", "service proxy"),
)

#: The share of failed probes one node must be an end of to be named (the rest: strays of another cause).
NODE_SHARE = 0.9

#: A check moving 1 MiB: alone among its area's failures, it points at full-size packets, not at its area.
BULK = "_carries_1_mib"

#: The grid layers that speak for each layer.
GRID = {
    "pod network": ("tcp", "udp", "icmp"),
    "path MTU": ("mtu",),
    "service proxy": ("clusterip",),
    "NodePort": ("nodeport",),
    "hostPort": ("hostport",),
    "cluster DNS": ("dns",),
    "NetworkPolicy": ("networkpolicy",),
}


WORKER_BANNER = re.compile(r"^\[gw\d+\] \S+ -- Python ")


@dataclass(frozen=True)
class Finding:
    layer: str
    where: str  # "", or the node / server that alone explains the failures
    summary: str
    evidence: tuple[str, ...] = ()
    also: tuple[str, ...] = field(default=())  # other failing layers (they may follow from this one)

    def line(self) -> str:
        return f"{self.layer}{f' ({self.where})' if self.where else ''}: {self.summary}"


def layer_of(result: CheckResult, area_failures: Counter[str]) -> str:
    name = result.name
    for fragment, layer in CHECK_LAYERS:
        if fragment in name:
            return layer
    if BULK in name and area_failures[result.area] == 1:
        return "path MTU"
    return AREA_LAYERS.get(result.area, result.area)


def localize(cells: list[Cell]) -> tuple[str, str]:
    """(where, how) when the failed cells single out one node, one server, or the paths between nodes; else
    ("", "")."""
    failed = [c for c in cells if not c.ok]
    passed = [c for c in cells if c.ok]
    if not failed or not passed:
        return "", ""
    targets = {c.target for c in failed}
    if len(targets) == 1 and "" not in targets and all(c.target not in targets for c in passed):
        (t,) = targets
        nodes = sorted({c.dst for c in failed})
        return f"{t} on {', '.join(nodes)}", f"every probe of {t} failed, from every node tried; every other one passed"
    for side, name in (("dst", "to"), ("src", "from")):
        ends = {getattr(c, side) for c in failed}
        if len(ends) == 1:
            (node,) = ends
            if any(getattr(c, side) != node for c in passed):
                return node, f"every failed probe went {name} {node}; probes {name} other nodes passed"
    # One node at an end of (nearly) every failed probe: a stray failure elsewhere (a probe that lost a race) does
    # not hide it, but it must stand out, and probes not touching it must exist and pass.
    share = {
        n: sum(n in (c.src, c.dst) for c in failed) / len(failed)
        for n in sorted({c.src for c in cells} | {c.dst for c in cells})
    }
    candidates = [n for n, part in share.items() if part >= NODE_SHARE and any(n not in (c.src, c.dst) for c in passed)]
    if len(candidates) == 1:
        (node,) = candidates
        touching = sum(node in (c.src, c.dst) for c in failed)
        return node, f"{touching} of {len(failed)} failed probes have an end on {node}; probes among other nodes passed"
    if all(c.src != c.dst for c in failed) and all(c.ok for c in cells if c.src == c.dst):
        nodes = sorted({c.src for c in failed} | {c.dst for c in failed})
        return (
            "between " + " and ".join(nodes),
            "every failed probe crosses from one node to another, probes within a node passed",
        )
    return "", ""


def first_line(message: str) -> str:
    """A failure's first line, past the worker banner xdist puts above it; for an exception's traceback, its first
    `E` line (the error), not the code around it."""
    lines = [line for line in message.strip().splitlines() if line.strip() and not WORKER_BANNER.match(line)]
    errors = [line[1:].strip() for line in lines if line.startswith("E   ")]
    if errors:
        return errors[0]
    return lines[0].strip() if lines else ""


def diagnose(run: Run) -> Finding | None:
    """The most likely broken layer, from every check's outcome and the grid's cells; None when nothing failed."""
    failed = run.failed()
    if not failed:
        return None
    area_failures = Counter(r.area for r in failed)
    layers = {r.test: layer_of(r, area_failures) for r in run.results}
    by_layer: dict[str, list[CheckResult]] = {}
    for r in failed:
        by_layer.setdefault(layers[r.test], []).append(r)
    rank = {name: i for i, name in enumerate(ORDER)}
    failing = sorted(by_layer, key=lambda name: rank.get(name, len(ORDER)))
    layer = failing[0]
    mine = [r for r in run.results if layers[r.test] == layer and r.outcome in (PASSED, FAILED)]
    bad = by_layer[layer]
    summary = f"{len(bad)} of {len(mine)} checks failed"
    below = [
        name
        for name in ORDER[: rank.get(layer, len(ORDER))]
        if any(layers[r.test] == name and r.outcome == PASSED for r in run.results) and name not in by_layer
    ]
    if below:  # the layers right under it tell the most; the pod network is where everything starts
        named = below[-3:]
        if "pod network" in below and "pod network" not in named:
            named = ["pod network", *below[-2:]]
        summary += f", while {', '.join(named)} passed"
    cells = [c for c in run.observations.cells if c.layer in GRID.get(layer, ())]
    where, how = localize(cells)
    evidence = [how] if how else []
    common = Counter(first_line(r.message) for r in bad).most_common(1)
    if common and common[0][1] >= 2 and common[0][0]:
        evidence.append(f"{common[0][1]} checks say: {common[0][0]}")
    elif bad:
        evidence.append(f"{bad[0].name}: {first_line(bad[0].message)}")
    return Finding(layer, where, summary, tuple(evidence), tuple(failing[1:]))


def lines(finding: Finding | None) -> list[str]:
    """The diagnosis as the terminal prints it."""
    if finding is None:
        return []
    out = [f"netconform: most likely broken: {finding.line()}"]
    out += [f"netconform:   {e}" for e in finding.evidence]
    if finding.also:
        out.append(f"netconform:   also failing (may follow from it): {', '.join(finding.also)}")
    return out
