"""What the NetworkPolicy API says about one connection: the expected side of the policy truth tables.

A pure function of the policies (as the API objects, dicts), the namespaces' labels and the two pods, written from
the API reference (networking.k8s.io/v1): a pod is isolated for a direction when a policy that selects it names
that direction in policyTypes (Ingress always; Egress when given or when the policy has egress rules); an isolated
pod admits a connection when any rule of any such policy matches both the peer and the port. Peers: ipBlock (CIDR
minus except), podSelector (the policy's own namespace), namespaceSelector, or both in one peer (AND). Ports:
protocol (TCP by default), a number with an optional endPort, or a name resolved on the destination pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Policy = Mapping[str, Any]


@dataclass(frozen=True)
class ContainerPort:
    number: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    ports: tuple[ContainerPort, ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); {} matches all."""
    if selector is None:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {op!r}")
    return True


def policy_types(policy: Policy) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def applies_to(policy: Policy, pod: Pod) -> bool:
    meta, spec = policy.get("metadata") or {}, policy.get("spec") or {}
    return meta.get("namespace") == pod.namespace and selects(spec.get("podSelector") or {}, pod.labels)


def _in_block(block: Mapping[str, Any], ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    net = ipaddress.ip_network(block["cidr"], strict=False)
    if addr.version != net.version or addr not in net:
        return False
    return not any(addr in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])


def _peer_matches(
    peer: Mapping[str, Any], policy_ns: str, other: Pod, namespaces: Mapping[str, Mapping[str, str]]
) -> bool:
    if "ipBlock" in peer:
        return _in_block(peer["ipBlock"], other.ip)
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    if ns_sel is None and pod_sel is None:
        return False  # an empty peer is invalid in the API; it matches nothing here
    if ns_sel is None:
        in_namespace = other.namespace == policy_ns
    else:
        in_namespace = selects(ns_sel, namespaces.get(other.namespace, {}))
    return in_namespace and selects(pod_sel, other.labels)


def _port_matches(rule_port: Mapping[str, Any], dst: Pod, port: int, protocol: str) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    want = rule_port.get("port")
    if want is None:
        return True
    if isinstance(want, str) and not want.isdigit():
        return any(p.name == want and p.protocol == protocol and p.number == port for p in dst.ports)
    start = int(want)
    end = int(rule_port.get("endPort") or start)
    return start <= port <= end


def _rules_admit(
    rules: Sequence[Mapping[str, Any]],
    peers_key: str,
    policy_ns: str,
    peer: Pod,
    dst: Pod,
    port: int,
    protocol: str,
    namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    for rule in rules:
        peers = rule.get(peers_key)
        if peers and not any(_peer_matches(p, policy_ns, peer, namespaces) for p in peers):
            continue
        ports = rule.get("ports")
        if ports and not any(_port_matches(p, dst, port, protocol) for p in ports):
            continue
        return True
    return False


def _direction_allows(
    direction: str,
    policies: Iterable[Policy],
    subject: Pod,
    peer: Pod,
    dst: Pod,
    port: int,
    protocol: str,
    namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    isolating = [p for p in policies if applies_to(p, subject) and direction in policy_types(p)]
    if not isolating:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        _rules_admit(
            (p.get("spec") or {}).get(rules_key) or [],
            peers_key,
            (p.get("metadata") or {}).get("namespace", ""),
            peer,
            dst,
            port,
            protocol,
            namespaces,
        )
        for p in isolating
    )


def allowed(
    policies: Sequence[Policy],
    namespaces: Mapping[str, Mapping[str, str]],
    src: Pod,
    dst: Pod,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether a connection from `src` to `dst` on `port`/`protocol` is allowed: egress at the source and
    ingress at the destination must both admit it."""
    egress = _direction_allows("Egress", policies, src, dst, dst, port, protocol, namespaces)
    return egress and _direction_allows("Ingress", policies, dst, src, dst, port, protocol, namespaces)


# -- truth tables ---------------------------------------------------------------------------------------------
#: The matrix's columns: every port and protocol each matrix pod serves.
PORTS: tuple[tuple[int, str], ...] = ((80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP"))
VIAS: tuple[str, ...] = ("pod IP", "Service")


@dataclass(frozen=True, order=True)
class Cell:
    """One probe of the matrix: from a pod to a pod (by its IP or its Service) on a port."""

    src: str
    dst: str
    port: int
    protocol: str
    via: str


Matrix = dict[Cell, bool]


def expected_matrix(
    policies: Sequence[Policy],
    namespaces: Mapping[str, Mapping[str, str]],
    pods: Sequence[Pod],
    ports: Sequence[tuple[int, str]] = PORTS,
    vias: Sequence[str] = VIAS,
) -> Matrix:
    """What the API says for every cell. Through a Service the verdict is the backend's: the policy sees the pod
    after the Service address is translated. A pod's connections to itself are left out: the API does not define
    them (upstream's netpol tests ignore them too; kube-router, for one, lets them through a deny-all policy)."""
    out: Matrix = {}
    for src in pods:
        for dst in pods:
            if src.key == dst.key:
                continue
            for port, proto in ports:
                verdict = allowed(policies, namespaces, src, dst, port, proto)
                for via in vias:
                    out[Cell(src.key, dst.key, port, proto, via)] = verdict
    return out


def differences(expected: Matrix, observed: Matrix) -> list[Cell]:
    return sorted(c for c, want in expected.items() if observed.get(c) != want)


def truth_rows(matrix: Matrix, pods: Sequence[Pod], port: int, protocol: str, via: str, mark: str = "X") -> list[str]:
    """One string per source pod, one character per destination: `.` a connection that went through, `mark` one
    that did not, `-` a pod to itself (not compared), `?` a cell not probed."""
    rows = []
    for src in pods:
        row = ""
        for dst in pods:
            v = matrix.get(Cell(src.key, dst.key, port, protocol, via))
            row += "-" if src.key == dst.key else "?" if v is None else "." if v else mark
        rows.append(row)
    return rows


def truth_table(
    matrix: Matrix,
    pods: Sequence[Pod],
    port: int,
    protocol: str,
    via: str,
    mark: str = "X",
    names: Mapping[str, str] | None = None,
) -> str:
    """The rows drawn as a table with the pods' names (short ones from `names`, e.g. "x/a"): rows are sources,
    columns destinations, the layout of upstream's netpol tests."""
    shown = [(names or {}).get(p.key, p.key) for p in pods]
    width = max(len(v) for v in shown)
    lines = [" " * width + " " + " ".join(v.ljust(width) for v in shown)]
    for name, row in zip(shown, truth_rows(matrix, pods, port, protocol, via, mark), strict=True):
        lines.append(name.ljust(width) + " " + " ".join(c.ljust(width) for c in row))
    return "\n".join(lines)


def report(expected: Matrix, observed: Matrix, pods: Sequence[Pod], names: Mapping[str, str] | None = None) -> str:
    """Expected, observed and difference tables for each port, protocol and path where they differ."""
    wrong = differences(expected, observed)
    parts = []
    for port, proto in PORTS:
        for via in VIAS:
            if not any(c.port == port and c.protocol == proto and c.via == via for c in wrong):
                continue
            diff = {
                c: (expected.get(c) == observed.get(c))
                for c in expected
                if c.port == port and c.protocol == proto and c.via == via
            }
            parts.append(
                f"{port}/{proto} by {via}:\nexpected:\n{truth_table(expected, pods, port, proto, via, names=names)}\n"
                f"observed:\n{truth_table(observed, pods, port, proto, via, names=names)}\n"
                "difference (! where they differ):\n" + truth_table(diff, pods, port, proto, via, mark="!", names=names)
            )
    return "\n\n".join(parts) or "no difference"


def as_tables(expected: Matrix, observed: Matrix, pods: Sequence[Pod]) -> dict[str, dict[str, list[str]]]:
    """Every port, protocol and path as expected and observed rows (see `truth_rows`), for reports/."""
    return {
        f"{port}/{proto} by {via}": {
            "expected": truth_rows(expected, pods, port, proto, via),
            "observed": truth_rows(observed, pods, port, proto, via),
        }
        for port, proto in PORTS
        for via in VIAS
    }
