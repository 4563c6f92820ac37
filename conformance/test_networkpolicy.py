"""NetworkPolicy: who may reach whom among nine pods in three namespaces, on TCP and UDP ports 80 and 81, by pod
IP and through each pod's Service, compared cell by cell with what the NetworkPolicy API says."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.netpol import (
    Enforcement,
    PolicyLab,
    create_namespaces,
    first_differences,
    probe_enforcement,
    request_pods,
)
from fixtures.observations import Observer
from fixtures.prestart import Stage
from netconform import netpol

pytestmark = pytest.mark.networkpolicy

#: How long a deny-all policy may take to block a connection before the area counts as not enforced.
ENFORCEMENT_S = 10.0


@dataclass(frozen=True)
class Case:
    # Test ids avoid the word "ingress": `pytest -k ingress` selects the Ingress area, not these.
    id: str
    manifest: str  # manifests/networkpolicy/<manifest>.yaml


CASES = (
    Case("default-deny-incoming", "deny-ingress"),
    Case("allow-by-pod-selector", "allow-pod-selector"),
    Case("allow-by-namespace-selector", "allow-namespace-selector"),
    Case("namespace-and-pod-selector-in-one-peer", "namespace-and-pod-selector"),
    Case("namespace-or-pod-selector-in-two-peers", "namespace-or-pod-selector"),
    Case("one-port-allowed-the-other-denied", "one-port"),
    Case("named-port", "named-port"),
    Case("port-range", "port-range"),
    Case("ip-block-with-except", "ip-block-except"),
    Case("egress-to-a-cidr", "egress-to-cidr"),
    Case("incoming-and-outgoing-together", "ingress-and-egress"),
)


def prestart(stage: Stage) -> None:
    """The nine pods take the cluster seconds to start: requested at the start of the run."""
    request_pods(stage.cluster, create_namespaces(stage.namespaces))


@pytest.fixture(scope="module")
def enforcement(policy_lab: PolicyLab) -> Enforcement:
    """Once per run: does a deny-all policy block a working connection at all?"""
    return probe_enforcement(policy_lab, ENFORCEMENT_S)


@pytest.fixture
def lab(policy_lab: PolicyLab, enforcement: Enforcement, cluster: ClusterHandle, observe: Observer) -> PolicyLab:
    """The lab with no policy applied, on a cluster that enforces policies (else the check ends unsupported)."""
    if enforcement.broken:
        pytest.fail(f"the NetworkPolicy lab's pods cannot reach each other: {enforcement.broken}", pytrace=False)
    cluster.require("networkpolicy", None if enforcement.enforced else enforcement.detail)
    policy_lab.clear()
    policy_lab.observer = observe
    return policy_lab


def expect_table(diagnose: Diagnose, lab: PolicyLab, name: str, via: str | None = None) -> netpol.Matrix:
    """Probe until the matrix equals what the applied policies say, or fail with the policies and the expected,
    observed and difference tables. `via` limits the comparison to one path (pod IP or Service)."""
    __tracebackhide__ = True
    expected = lab.expected()
    if via:
        expected = {c: ok for c, ok in expected.items() if c.via == via}
    observed, took = lab.converge(expected)
    lab.record(name, expected, observed, took)
    wrong = netpol.differences(expected, observed)
    lasting = lab.lasting(wrong)
    lab.record_nodes(expected, observed, lasting)
    if wrong:
        sources = sorted({c.src for c in wrong})
        for src in sources:
            diagnose.involve(*src.split("/"))
        policies = yaml.safe_dump_all(lab.applied, sort_keys=False) if lab.applied else "(no policy)\n"
        tables = netpol.report(expected, observed, lab.pods, lab.short_names)
        diagnose.fail(
            f"NetworkPolicy {name}: {len(wrong)} of {len(expected)} connections differ from what the policies say, "
            f"{took:.0f}s after they were applied; {where(lab, lasting)}{once(len(wrong) - len(lasting))}",
            expected="every connection as the truth tables computed from the policies (netconform.netpol)",
            observed=f"{first_differences(wrong, lab.short_names)}\n\npolicies:\n{policies}\n{tables}",
            objects=[f"networkpolicy {p['metadata']['namespace']}/{p['metadata']['name']}" for p in lab.applied],
            reproduce=[lab.repro(lab.pod_by_key(src)) for src in sources[:2]],
            hint=f"`.` went through, `X` did not, `-` a pod to itself (not compared); rows are sources, columns "
            f"destinations; x, y, z are {', '.join(lab.namespaces.values())}",
        )
    return observed


def where(lab: PolicyLab, wrong: list[netpol.Cell]) -> str:
    """The nodes the differing connections have in common: all from pods on one node to pods on another, all to pods
    on one, all from pods on one, or each with an end on it (one node's engine broken shows as that node)."""
    if len(set(lab.nodes.values())) > 1:
        sources, destinations = ({lab.nodes[getattr(c, side)] for c in wrong} for side in ("src", "dst"))
        if len(sources) == len(destinations) == 1:
            (src,), (dst,) = sources, destinations
            if src == dst:
                return f"every one of them is between pods on node {src}"
            return f"every one of them goes from a pod on node {src} to a pod on node {dst}"
        if len(destinations) == 1:
            return f"every one of them goes to a pod on node {destinations.pop()}"
        if len(sources) == 1:
            return f"every one of them comes from a pod on node {sources.pop()}"
        common = set(lab.nodes.values())
        for c in wrong:
            common &= {lab.nodes[c.src], lab.nodes[c.dst]}
        if common:
            return f"every one of them has an end on node {', '.join(sorted(common))}"
    return "they involve pods on nodes " + ", ".join(sorted({lab.nodes[k] for c in wrong for k in (c.src, c.dst)}))


def once(count: int) -> str:
    """The connections left out of `where`: wrong in the last round only."""
    return f" ({count} more differed in the last round only, not in the one before)" if count else ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_networkpolicy_truth_table(case: Case, lab: PolicyLab, diagnose: Diagnose) -> None:
    """Each policy lets through exactly what the API says, on every port, protocol and path."""
    lab.apply(case.manifest)
    expect_table(diagnose, lab, case.id)


def test_networkpolicy_default_deny_egress_with_dns_allowed(lab: PolicyLab, diagnose: Diagnose) -> None:
    """Egress denied except DNS: no connection leaves x, and a Service name still resolves from x."""
    lab.apply("deny-egress-allow-dns")
    expect_table(diagnose, lab, "default-deny-egress-with-dns-allowed")
    src, svc = lab.pod("x/a"), lab.pod("y/a")
    name = f"{svc.name}.{svc.namespace}.svc"
    command = ["getent", "ahostsv4", name]
    answer = lab.cluster.kube.exec(src.namespace, src.name, command, timeout_s=15)
    got = answer.stdout.split()[0] if answer.stdout.split() else ""
    diagnose.check(
        got == lab.services[svc.key],
        f"{name} does not resolve from {src.key} under a policy that allows DNS",
        expected=lab.services[svc.key],
        observed=got or f"exit {answer.rc}: {answer.stderr.strip() or 'no answer'}",
        objects=[f"networkpolicy {src.namespace}/deny-egress-allow-dns"],
        reproduce=lab.cluster.kube.kubectl("exec", "-n", src.namespace, src.name, "--", *command),
    )


def test_networkpolicy_update_from_allow_to_deny_converges(lab: PolicyLab, diagnose: Diagnose) -> None:
    """A policy edited in place from allow-all to deny-all takes effect."""
    lab.apply("allow-all-ingress")
    expect_table(diagnose, lab, "update-before")
    lab.apply("deny-all-ingress-update")
    expect_table(diagnose, lab, "update-after")


def test_networkpolicy_deleting_the_policy_restores_traffic(lab: PolicyLab, diagnose: Diagnose) -> None:
    """Once a deny-all policy is deleted, every connection it blocked goes through again."""
    docs = lab.apply("deny-ingress-y")
    expect_table(diagnose, lab, "delete-before")
    lab.delete(docs[0]["metadata"]["namespace"], docs[0]["metadata"]["name"])
    expect_table(diagnose, lab, "delete-after")


def test_networkpolicy_service_traffic_obeys_the_policy_at_the_backend(lab: PolicyLab, diagnose: Diagnose) -> None:
    """Through a ClusterIP, the backend's policy decides: the Service address is no way around it."""
    lab.apply("allow-pod-selector")
    observed = expect_table(diagnose, lab, "service-at-the-backend", via="Service")
    assert not all(observed.values()), "the case must deny some Service connections to prove anything"


def test_networkpolicy_applies_to_pods_on_another_node(
    lab: PolicyLab, cluster: ClusterHandle, diagnose: Diagnose
) -> None:
    """Policies hold between nodes: cross-node pairs are allowed and denied as the API says."""
    cluster.require_area("crossnode")
    lab.apply("allow-namespace-selector")
    observed = expect_table(diagnose, lab, "crossnode")
    crossing = [c for c in observed if lab.nodes[c.src] != lab.nodes[c.dst]]
    verdicts = {observed[c] for c in crossing}
    assert verdicts == {True, False}, f"cross-node pairs must include allowed and denied ones, saw {verdicts}"
