"""The capability registry: the one place an area of the suite is declared.

An area is a marker (`pytest -m dns`), a `-k` word, a `--require` choice and a row of the README's area table, all
from one entry here: its name, what it checks, what the cluster must offer, the areas it builds on, and how a
missing capability is detected from the API (milliseconds, never by waiting for something that will not come).

A check that cannot run ends in one of two kinds of skip, and only these two:
- `unsupported`: the cluster lacks the capability (no IngressClass, one node for node pairs, no LoadBalancer
  implementation). Under `--require <area>` (or `all`) it is a failure, so a required area never ends as a skip.
- `not-applicable`: the check does not apply to this cluster or run (an Ingress without class on a cluster with a
  default class, a runner-side probe on a cluster the runner may not reach). It never fails a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import pytest

from .capabilities import ClusterInfo, pick_ingress_class

if TYPE_CHECKING:
    from .settings import Settings

Detector = Callable[[ClusterInfo, "Settings"], "str | None"]

#: JUnit property and report field that say which kind of skip a test ended in.
OUTCOME_PROPERTY = "netconform_outcome"
UNSUPPORTED = "unsupported"
NOT_APPLICABLE = "not-applicable"


class Unsupported(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """The cluster lacks a capability the check needs (a failure under --require)."""


class NotApplicable(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """The check does not apply to this cluster or run."""


def _nodes(info: ClusterInfo, settings: Settings) -> str | None:
    if not info.schedulable_nodes:
        return f"no schedulable Ready node (cluster has {len(info.nodes)} node(s))"
    return None


def _two_nodes(info: ClusterInfo, settings: Settings) -> str | None:
    n = len(info.schedulable_nodes)
    return None if n >= 2 else f"needs at least 2 schedulable Ready nodes (cluster has {n})"


def _dns(info: ClusterInfo, settings: Settings) -> str | None:
    return None if info.dns_service_ip else "no cluster DNS Service kube-system/kube-dns"


def _ingress(info: ClusterInfo, settings: Settings) -> str | None:
    if not info.ingress_classes:
        return "no IngressClass in the cluster (no ingress controller installed)"
    if pick_ingress_class(info.ingress_classes, settings.ingress_class) is None:
        names = ", ".join(c.name for c in info.ingress_classes)
        if settings.ingress_class:
            return f"IngressClass {settings.ingress_class!r} not found (present: {names})"
        return f"several IngressClasses and none is default ({names}); choose one with --ingress-class"
    return None


def _cert_manager(info: ClusterInfo, settings: Settings) -> str | None:
    return None if info.cert_manager else "cert-manager CRDs (certificates.cert-manager.io) are not installed"


def _loadbalancer(info: ClusterInfo, settings: Settings) -> str | None:
    lb = info.loadbalancer
    return lb.absent if lb.absent else None


@dataclass(frozen=True)
class Area:
    name: str
    meaning: str  # one line: the marker's help, the README row
    needs: str  # what the cluster must offer, in words
    detect: Detector = _nodes
    depends: tuple[str, ...] = ()  # areas this one builds on (headless names need cluster DNS)
    #: Its checks wait on work the cluster takes many seconds to do (certificate issuance): requested before the
    #: workers start, and its checks scheduled last (fixtures/prestart.py, fixtures/schedule.py).
    long_lead: bool = False
    #: Its module's objects are requested before the workers start (as a long-lead area's are) but its checks are
    #: scheduled by cost as any other's: the module that ends a run last once its pods are ready, whose first check
    #: otherwise waits for pods requested seconds later, after the workers' collection (fixtures/prestart.py).
    early: bool = False
    #: The area whose namespace its module's objects go in, when not its own: TLS and cert-manager route every
    #: host to the Ingress area's `blue` backend, and an Ingress reaches only Services of its own namespace. One
    #: namespace and one backend pod for the three, where each started its own (a pod start is most of what a run
    #: on a small cluster spends its CPU on, #12); their object and host names differ.
    home: str | None = None
    #: Modules of the area beside its own, `test_<name>_<part>.py`: same marker, same namespace, scheduled on their
    #: own. For a check whose time is mostly the cluster's own waiting (a pod's graceful stop), so that it runs
    #: beside the area's other checks instead of after them on one worker. Its objects must be its own: another
    #: worker runs the rest of the area meanwhile.
    parts: tuple[str, ...] = ()
    #: Seconds its module typically takes on the 2-node local cluster (what reports/costs.json recorded in runs
    #: there): the order of a run with no recorded costs yet, a first run (fixtures/schedule.py). 0: not declared.
    cost: float = 0.0


@dataclass(frozen=True)
class Trait:
    """A marker that says how a check runs, not what it checks."""

    name: str
    meaning: str


AREAS: tuple[Area, ...] = (
    Area("cni", "pod interfaces and addresses match the CNI configuration", "a schedulable Ready node", cost=13),
    Area(
        "clusterip",
        "ClusterIP Services reach and spread over every replica",
        "a schedulable Ready node",
        parts=("terminating",),
        cost=20,
    ),
    Area("dns", "Service names resolve short and fully qualified", "the kube-dns Service", _dns, cost=5),
    Area("nodeport", "NodePort Services answer on every node", "a schedulable Ready node", cost=4),
    Area(
        "loadbalancer",
        "LoadBalancer Services get an address that answers",
        "a LoadBalancer implementation (cloud provider, MetalLB, ...)",
        _loadbalancer,
        cost=15,
    ),
    Area("headless", "headless Service names resolve to pod IPs", "cluster DNS", depends=("dns",), cost=5),
    Area("externalname", "ExternalName Services are CNAMEs", "cluster DNS", depends=("dns",), cost=1),
    Area("endpoints", "Services without selector reach static endpoints", "a schedulable Ready node", cost=8),
    Area(
        "ingress",
        "Ingress routes by class, host and path",
        "an IngressClass and its running controller",
        _ingress,
        cost=5,
    ),
    Area(
        "tls",
        "Ingress TLS: default, own and redirect",
        "an ingress controller serving HTTPS",
        depends=("ingress",),
        home="ingress",
        cost=4,
    ),
    Area(
        "certmanager",
        "certificates issued by cert-manager (CA and ACME) are served",
        "cert-manager's CRDs and controller",
        _cert_manager,
        depends=("ingress",),
        home="ingress",
        long_lead=True,
        cost=2,
    ),
    Area(
        "networkpolicy",
        "NetworkPolicy allows and denies exactly what the API says, as truth tables",
        "a network plugin that enforces NetworkPolicy (probed once per run: a deny-all policy must block a "
        "working connection)",
        early=True,
        cost=18,
    ),
    Area(
        "crossnode",
        "pod and Service traffic between every node pair",
        "at least 2 schedulable Ready nodes",
        _two_nodes,
        cost=15,
    ),
)

TRAITS: tuple[Trait, ...] = (
    Trait("privileged", "needs a privileged or hostNetwork pod (deselect with -m 'not privileged')"),
    Trait("disruptive", "changes shared cluster state (deselect with -m 'not disruptive')"),
)

BY_NAME: dict[str, Area] = {a.name: a for a in AREAS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def module_stems() -> dict[str, str]:
    """Every conformance module's name without `test_`, to its area's name."""
    return {stem: a.name for a in AREAS for stem in (a.name, *(f"{a.name}_{p}" for p in a.parts))}


def home_of(name: str) -> tuple[str, bool]:
    """(the area whose namespace `name`'s module uses, whether other areas' modules use it too)."""
    area = BY_NAME.get(name)
    home = area.home if area and area.home else name
    return home, any(a.home == home for a in AREAS)


def marker_lines() -> list[str]:
    """`name: meaning` for every area and trait, as pytest registers markers."""
    return [f"{a.name}: {a.meaning}" for a in AREAS] + [f"{t.name}: {t.meaning}" for t in TRAITS]


def missing(name: str, info: ClusterInfo, settings: Settings) -> tuple[str, str] | None:
    """(area at fault, reason) when `name` or an area it builds on is missing on this cluster, else None."""
    area = BY_NAME[name]
    for dep in area.depends:
        found = missing(dep, info, settings)
        if found:
            return found
    reason = area.detect(info, settings)
    return (name, reason) if reason else None


def areas_of(markers: Iterable[str]) -> list[str]:
    """The areas among a test's marker names, in registry order."""
    names = set(markers)
    return [a for a in NAMES if a in names]


def unsupported(area: str, reason: str, required: frozenset[str], because_of: str | None = None) -> NoReturn:
    """End the calling check as `unsupported`, or fail it when its area (or the missing one) is required."""
    __tracebackhide__ = True
    cause = because_of or area
    if area in required or cause in required:
        which = area if area in required else cause
        pytest.fail(f"required area {which!r} is unsupported on this cluster: {reason}", pytrace=False)
    raise Unsupported(f"unsupported ({cause}): {reason}")


def not_applicable(reason: str) -> NoReturn:
    """End the calling check as `not-applicable`: it does not apply to this cluster or run."""
    __tracebackhide__ = True
    raise NotApplicable(f"not applicable: {reason}")


def outcome_of(exc: BaseException) -> str | None:
    if isinstance(exc, Unsupported):
        return UNSUPPORTED
    if isinstance(exc, NotApplicable):
        return NOT_APPLICABLE
    return None


def markdown_table() -> str:
    """The README's area table."""
    rows = ["| area (`-m`, `-k`, `--require`) | checks | the cluster needs |", "|---|---|---|"]
    for a in AREAS:
        needs = a.needs + (f" (builds on {', '.join(a.depends)})" if a.depends else "")
        rows.append(f"| `{a.name}` | {a.meaning} | {needs} |")
    return "\n".join(rows)
