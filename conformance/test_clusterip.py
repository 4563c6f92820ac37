"""ClusterIP Services: traffic reaches every replica, fairly; EndpointSlices follow the ready pods."""

from __future__ import annotations

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.preconditions import Precondition, service_proxy
from fixtures.prestart import Stage
from fixtures.workloads import Backend, ServiceRef, Workloads
from netconform import probes
from netconform.diagnose import summarize_counts
from netconform.probes import ProbePod

pytestmark = pytest.mark.clusterip

REPLICAS = 3


def prestart(stage: Stage) -> None:
    """The replicas and their Service, requested at the start of the run."""
    stage.workloads.request_server("web", replicas=REPLICAS)
    stage.workloads.service("clusterip", "service", NAME="web")


@pytest.fixture(scope="module")
def web(workloads: Workloads) -> Backend:
    """Three nc-echo replicas that answer with their hostname."""
    return workloads.server("web", replicas=REPLICAS)


@pytest.fixture(scope="module")
def service(workloads: Workloads, web: Backend) -> ServiceRef:
    """A ClusterIP Service in front of the replicas, ready when its EndpointSlices list them all."""
    svc = workloads.service("clusterip", "service", NAME="web")
    workloads.wait_endpoints("web", web.ips)
    return svc


def check_spread(
    diagnose: Diagnose, cluster: ClusterHandle, client: ProbePod, svc: ServiceRef, backends: set[str]
) -> None:
    __tracebackhide__ = True
    count = probes.requests_for_spread(len(backends))
    url = f"http://{svc.cluster_ip}:{svc.port()}/hostname"
    # Ready EndpointSlices do not mean kube-proxy (or its replacement) has programmed them yet: first wait, up to
    # the probe deadline, until a burst reaches every current replica and no other pod; then measure. If that
    # never happens the measurement below says which replica is missing.
    burst = probes.requests_to_reach_all(len(backends), p_fail=1e-3)
    try:
        probes.eventually(
            lambda: probes.spread(client, url, burst),
            lambda s: set(s.counts) == backends,
            diagnose.scale * probes.PROBE_S,
            successes=1,
        )
    except probes.NotConsistent:
        pass
    got = probes.spread(client, url, count)
    floor = count / len(backends) / 3
    diagnose.involve(svc.namespace, client.name, *backends)
    objects = [
        client.describe(),
        f"service {svc.namespace}/{svc.name} ({svc.cluster_ip})",
        f"replicas {', '.join(sorted(backends))}",
    ]
    repro = client.repro(got.command)
    missing = backends - set(got.counts)
    diagnose.check(
        not missing,
        "the ClusterIP does not reach every replica",
        expected=f"each of {len(backends)} replicas answers some of {count} requests",
        observed=f"never answered: {', '.join(sorted(missing))}; answers {summarize_counts(got.counts)}; "
        f"{got.failures} request(s) failed {list(got.errors)[:2]}",
        objects=objects,
        reproduce=repro,
    )
    diagnose.check(
        got.failures == 0,
        "requests to the ClusterIP failed",
        expected=f"{count} answers",
        observed=f"{got.failures} of {count} failed "
        f"(first errors: {list(got.errors)[:3]}); answers {summarize_counts(got.counts)}",
        objects=objects,
        reproduce=repro,
    )
    strangers = set(got.counts) - backends
    diagnose.check(
        not strangers,
        "answers came from pods that are not the Service's current replicas",
        expected=", ".join(sorted(backends)),
        observed=summarize_counts(got.counts),
        objects=objects,
        reproduce=repro,
    )
    starved = {k: v for k, v in got.counts.items() if v < floor}
    diagnose.check(
        not starved,
        "the ClusterIP spreads requests unfairly",
        expected=f"every replica at least a third of its fair share ({floor:.1f} of {count})",
        observed=summarize_counts(got.counts),
        objects=objects,
        reproduce=repro,
    )


@pytest.fixture(scope="module")
def proxy(cluster: ClusterHandle, client: ProbePod, service: ServiceRef) -> Precondition:
    """The Service proxy answers on the ClusterIP at all (probed once): if not, the traffic checks fail at once
    with that cause instead of each measuring a Service that never answers."""
    return service_proxy(cluster, client, service)


def test_clusterip_spreads_requests_over_every_replica(
    proxy: Precondition, diagnose: Diagnose, cluster: ClusterHandle, client: ProbePod, service: ServiceRef, web: Backend
) -> None:
    """Requests to the ClusterIP reach all 3 replicas, none with less than a third of its fair share."""
    proxy.require()
    check_spread(diagnose, cluster, client, service, web.names)


def test_clusterip_endpointslices_list_exactly_the_ready_pods(
    diagnose: Diagnose, workloads: Workloads, service: ServiceRef, web: Backend
) -> None:
    """The Service's EndpointSlices list exactly the ready pod IPs, on both target ports (HTTP and UDP)."""
    expected = {(ip, port) for ip in web.ips for port in (8080, 8081)}
    observed = workloads.endpoint_addresses(service.name)
    diagnose.check(
        observed == expected,
        "EndpointSlices do not match the ready pods",
        expected=str(sorted(expected)),
        observed=str(sorted(observed)),
        objects=[f"service {service.namespace}/{service.name}"],
        reproduce=workloads.kube.kubectl(
            "get",
            "endpointslices",
            "-n",
            service.namespace,
            "-l",
            f"kubernetes.io/service-name={service.name}",
            "-o",
            "wide",
        ),
    )


def test_clusterip_converges_after_a_pod_is_deleted(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    client: ProbePod,
    service: ServiceRef,
    web: Backend,
) -> None:
    """After one replica is deleted, the EndpointSlices follow the new pod set and traffic reaches all 3 again."""
    proxy.require()
    victim = sorted(web.pods, key=lambda p: p.name)[0]
    workloads.delete_pod(victim.name)
    pods = workloads.wait_ready("app=web", REPLICAS, "Deployment web after a pod deletion")
    names = {p.name for p in pods}
    diagnose.check(
        victim.name not in names,
        "the deleted pod is still listed as ready",
        expected=f"{victim.name} gone",
        observed=", ".join(sorted(names)),
    )
    workloads.wait_endpoints(service.name, {p.ip for p in pods})
    check_spread(diagnose, cluster, client, service, names)
