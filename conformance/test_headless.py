"""Headless Services: no ClusterIP; the name resolves to exactly the ready pod IPs and follows a scale-up."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.preconditions import Precondition
from fixtures.prestart import Stage
from fixtures.workloads import Backend, ServiceRef, Workloads
from netconform import probes
from netconform.kube import wait
from netconform.probes import ProbePod

pytestmark = pytest.mark.headless

#: The run's probe pod is this module's client: every name it resolves is fully qualified.
SHARED_CLIENT = True


REPLICAS = 2


def prestart(stage: Stage) -> None:
    """The replicas and the headless Service, requested at the start of the run."""
    stage.workloads.request_server("web", replicas=REPLICAS)
    stage.workloads.service("headless", "service", NAME="web")
    stage.workloads.apply(stage.workloads.render("headless", "members"))


@pytest.fixture(scope="module")
def web(workloads: Workloads) -> Backend:
    return workloads.server("web", replicas=REPLICAS)


@pytest.fixture(scope="module")
def service(workloads: Workloads, web: Backend) -> ServiceRef:
    """A headless Service (clusterIP: None) selecting the replicas."""
    svc = workloads.service("headless", "service", NAME="web")
    workloads.wait_endpoints("web", web.ips)
    return svc


def expect_resolves_to(
    diagnose: Diagnose, cluster: ClusterHandle, client: ProbePod, svc: ServiceRef, ips: set[str]
) -> None:
    __tracebackhide__ = True
    name = f"{svc.name}.{svc.namespace}.svc.{cluster.info.cluster_domain}"
    diagnose.until(
        probes.lookup_probe(client, name),
        lambda a: a.values("A") == ips,
        via=client,
        what=f"headless name {name} does not resolve to the ready pod IPs",
        expected=f"A records exactly {sorted(ips)}",
        objects=[f"service {svc.namespace}/{svc.name}"],
    )


def test_headless_service_has_no_cluster_ip(diagnose: Diagnose, service: ServiceRef) -> None:
    """A headless Service gets no ClusterIP."""
    diagnose.check(
        service.cluster_ip == "None",
        "headless Service got a ClusterIP",
        expected="clusterIP None",
        observed=f"clusterIP {service.cluster_ip}",
        objects=[f"service {service.namespace}/{service.name}"],
    )


def test_headless_endpoints_equal_the_pod_ips(
    diagnose: Diagnose, workloads: Workloads, service: ServiceRef, web: Backend
) -> None:
    """The headless Service's EndpointSlices list exactly the ready pod IPs."""
    got = {ip for ip, _ in workloads.endpoint_addresses(service.name)}
    diagnose.check(
        got == web.ips,
        "headless EndpointSlices differ from the pod IPs",
        expected=str(sorted(web.ips)),
        observed=str(sorted(got)),
        objects=[f"service {service.namespace}/{service.name}"],
    )


def test_headless_name_resolves_to_exactly_the_ready_pod_ips(
    cluster_dns: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    service: ServiceRef,
    web: Backend,
) -> None:
    """The headless name resolves to the set of ready pod IPs, no more and no less."""
    cluster_dns.require()
    expect_resolves_to(diagnose, cluster, client, service, web.ips)


def test_headless_pod_answers_icmp_through_the_headless_name(
    cluster_dns: Precondition, diagnose: Diagnose, cluster: ClusterHandle, client: ProbePod, service: ServiceRef
) -> None:
    """A pod behind the headless name answers ICMP echo."""
    cluster_dns.require()
    name = f"{service.name}.{service.namespace}.svc.{cluster.info.cluster_domain}"
    diagnose.until(
        probes.ping_probe(client, name),
        lambda r: r.ok,
        via=client,
        what=f"no ICMP echo reply through {name}",
        expected="3 of 3 replies",
        objects=[f"service {service.namespace}/{service.name}"],
        observed=lambda last: last.output[-300:],
    )


def test_headless_name_follows_a_scale_up(
    cluster_dns: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    client: ProbePod,
    service: ServiceRef,
    web: Backend,
) -> None:
    """After the Deployment scales from 2 to 3, the name resolves to all 3 pod IPs."""
    cluster_dns.require()
    workloads.apply(workloads.render("common", "server", NAME="web", REPLICAS=3))
    pods = workloads.wait_ready("app=web", 3, "Deployment web scaled to 3")
    expect_resolves_to(diagnose, cluster, client, service, {p.ip for p in pods})


def resolves_to(ips: set[str]) -> Callable[[probes.DnsAnswer], bool]:
    return lambda a: a.values("A") == ips


@pytest.fixture(scope="module")
def members(workloads: Workloads) -> tuple[str, str]:
    """(steady's IP, lagging's IP): the ready pod and the one that runs but never becomes ready."""
    workloads.apply(workloads.render("headless", "members"))
    steady = workloads.wait_pod("steady")

    def lagging_ip() -> str | None:
        st = (workloads.kube.get("v1", "Pod", "lagging", workloads.namespace) or {}).get("status") or {}
        started = any(c.get("started") for c in st.get("containerStatuses") or [])
        return st.get("podIP") if started else None

    return steady.ip, wait(f"pod {workloads.namespace}/lagging running", lagging_ip, workloads.deadline(60))


def test_headless_publish_not_ready_addresses_also_names_the_pod_that_is_not_ready(
    cluster_dns: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    workloads: Workloads,
    members: tuple[str, str],
) -> None:
    """Of two pods, one never ready: the headless name lists only the ready one, and the same Service with
    publishNotReadyAddresses lists both."""
    cluster_dns.require()
    steady, lagging = members
    domain = cluster.info.cluster_domain
    for svc, want in (("members", {steady}), ("members-all", {steady, lagging})):
        name = f"{svc}.{workloads.namespace}.svc.{domain}"
        diagnose.until(
            probes.lookup_probe(client, name),
            resolves_to(want),
            via=client,
            what=f"headless name {name} does not list "
            + ("only the ready pod" if svc == "members" else "the not-ready pod too (publishNotReadyAddresses)"),
            expected=f"A records exactly {sorted(want)}",
            objects=[f"service {workloads.namespace}/{svc}", f"pods steady ({steady}), lagging ({lagging}, not ready)"],
        )
