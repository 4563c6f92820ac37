"""A run's results as plain data: what the report draws and the diagnosis reasons over (no pytest, no cluster)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

#: The node-pair layers, in the order the report draws them: key -> panel title.
LAYERS = {
    "tcp": "pod IP, TCP",
    "udp": "pod IP, UDP",
    "icmp": "pod IP, ICMP",
    "mtu": "path MTU (full-size packets, 1 MiB)",
    "clusterip": "ClusterIP (backend on the column's node)",
    "nodeport": "NodePort (to the column's node)",
    "hostport": "hostPort (to the column's node)",
    "dns": "cluster DNS (replica on the column's node)",
    "networkpolicy": "NetworkPolicy (destination on the column's node)",
}

PASSED, FAILED, UNSUPPORTED, NOT_APPLICABLE, SKIPPED = "passed", "failed", "unsupported", "not applicable", "skipped"


@dataclass(frozen=True)
class Cell:
    """One probe from a pod on `src` to a target on `dst`, on one layer."""

    layer: str
    src: str
    dst: str
    ok: bool
    test: str
    probe: str = ""
    answer: str = ""
    target: str = ""  # the server probed, where a node has several (a DNS replica)


@dataclass(frozen=True)
class Spread:
    """Requests per replica through one Service, and the least a fair spread gives each (`floor`)."""

    test: str
    title: str
    counts: dict[str, int]
    total: int
    floor: float


@dataclass(frozen=True)
class Certificate:
    """A certificate chain served to a TLS check, as the report shows it."""

    test: str
    host: str
    subject: str
    sans: tuple[str, ...]
    chain: tuple[str, ...]  # issuers, leaf's first
    not_after: str  # ISO 8601, UTC
    verdict: str

    @classmethod
    def of(cls, test: str, host: str, chain: Any, verdict: str) -> Certificate:
        from netconform import certs

        leaf = chain[0]
        return cls(
            test,
            host,
            leaf.subject.rfc4514_string() or "(empty)",
            tuple(certs.san_names(leaf)),
            tuple(c.issuer.rfc4514_string() for c in chain),
            leaf.not_valid_after_utc.isoformat(),
            verdict,
        )

    def days_left(self, now: dt.datetime) -> float:
        return (dt.datetime.fromisoformat(self.not_after) - now).total_seconds() / 86400


@dataclass
class Observations:
    cells: list[Cell] = field(default_factory=list)
    spreads: list[Spread] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.cells or self.spreads or self.certificates)

    def extend(self, other: Observations) -> None:
        self.cells += other.cells
        self.spreads += other.spreads
        self.certificates += other.certificates

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Observations:
        return cls(
            [Cell(**c) for c in d.get("cells", [])],
            [Spread(**s) for s in d.get("spreads", [])],
            [
                Certificate(**{**c, "sans": tuple(c["sans"]), "chain": tuple(c["chain"])})
                for c in d.get("certificates", [])
            ],
        )

    def grid(self, layer: str) -> dict[tuple[str, str], list[Cell]]:
        """A layer's cells by (source node, destination node)."""
        out: dict[tuple[str, str], list[Cell]] = {}
        for c in self.cells:
            if c.layer == layer:
                out.setdefault((c.src, c.dst), []).append(c)
        return out


@dataclass(frozen=True)
class CheckResult:
    """One check's end: outcome is one of PASSED, FAILED, UNSUPPORTED, NOT_APPLICABLE, SKIPPED."""

    test: str
    area: str
    outcome: str
    seconds: float
    message: str = ""
    sections: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """The test function's name, without module or parameters."""
        return self.test.rpartition("::")[2].partition("[")[0]

    @property
    def params(self) -> str:
        return self.test.partition("[")[2].removesuffix("]")


@dataclass
class Run:
    """Everything the report and the diagnosis need of a finished run."""

    run_id: str
    header: list[str]
    nodes: list[str]
    results: list[CheckResult]
    observations: Observations
    wall_s: float = 0.0

    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == FAILED]
