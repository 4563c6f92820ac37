"""Services without a selector reach the static endpoints they were given, by ClusterIP and by headless name."""

from __future__ import annotations

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.preconditions import Precondition, service_proxy
from fixtures.prestart import Stage
from fixtures.workloads import Backend, Workloads, request_echo
from netconform import probes
from netconform.probes import ProbePod

pytestmark = pytest.mark.endpoints

#: The run's probe pod is this module's client: it reaches the Services by ClusterIP and fully qualified name.
SHARED_CLIENT = True


def prestart(stage: Stage) -> None:
    """The servers behind the static endpoints, requested at the start of the run."""
    if stage.run:
        request_echo(stage.run)


@pytest.fixture(scope="module")
def target(run_echo: Backend) -> Backend:
    """The server the static endpoints point at: one of the run's shared nc-echo servers, in another namespace than
    the Services (an address is all a static endpoint holds)."""
    return Backend(run_echo.name, run_echo.namespace, run_echo.pods[:1])


@pytest.fixture(scope="module")
def services(workloads: Workloads, target: Backend) -> dict[str, str]:
    """Selector-less Services and their static endpoints; name -> ClusterIP."""
    (pod,) = target.pods
    applied = workloads.apply(workloads.render("endpoints", "static", TARGET_IP=pod.ip))
    return {d["metadata"]["name"]: d["spec"].get("clusterIP") for d in applied if d["kind"] == "Service"}


@pytest.fixture(scope="module")
def proxy(cluster: ClusterHandle, run_workloads: Workloads, client: ProbePod, run_echo: Backend) -> Precondition:
    """The Service proxy answers at all, on an ordinary Service in front of the shared servers (the target among
    them): if it does not, the selector-less Services cannot work either, and their checks fail at once with that
    cause."""
    svc = run_workloads.service("clusterip", "service", NAME=run_echo.name)
    run_workloads.wait_endpoints(run_echo.name, run_echo.ips)
    return service_proxy(cluster, client, svc)


@pytest.mark.parametrize("service_name", ["static-slice", "static-endpoints"])
def test_endpoints_selectorless_service_reaches_its_static_endpoint(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    workloads: Workloads,
    services: dict[str, str],
    target: Backend,
    service_name: str,
) -> None:
    """A ClusterIP Service without selector forwards to the address in its EndpointSlice / Endpoints."""
    proxy.require()
    (pod,) = target.pods
    url = f"http://{services[service_name]}:80/hostname"
    diagnose.until(
        probes.http_probe(client, url),
        lambda r: r.ok and r.body.strip() == pod.name,
        via=client,
        what=f"Service {service_name} does not reach its static endpoint {pod.ip}:8080",
        expected=f"HTTP 200 from {pod.name}",
        objects=[f"service {workloads.namespace}/{service_name}", f"endpoint pod {pod.name} ({pod.ip})"],
    )


def test_endpoints_selectorless_headless_name_resolves_to_the_static_address(
    cluster_dns: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    workloads: Workloads,
    services: dict[str, str],
    target: Backend,
) -> None:
    """A headless Service without selector resolves to the address in its EndpointSlice."""
    cluster_dns.require()
    (pod,) = target.pods
    name = f"static-headless.{workloads.namespace}.svc.{cluster.info.cluster_domain}"
    diagnose.until(
        probes.lookup_probe(client, name),
        lambda a: a.values("A") == {pod.ip},
        via=client,
        what=f"{name} does not resolve to its static endpoint",
        expected=f"A {pod.ip}",
    )
