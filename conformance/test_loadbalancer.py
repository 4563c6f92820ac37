"""LoadBalancer Services: an address is assigned and answers with a backend, or the cluster has no implementation."""

from __future__ import annotations

import time

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.workloads import Backend, Workloads
from netconform import probes
from netconform.errors import WaitTimeout
from netconform.kube import wait
from netconform.probes import ProbePod

pytestmark = pytest.mark.loadbalancer

PENDING_S = 10.0  # MetalLB-style implementations assign within seconds; clouds: --timeout-scale


@pytest.fixture(scope="module")
def web(workloads: Workloads) -> Backend:
    return workloads.server("web", replicas=2)


def test_loadbalancer_gets_an_address_that_answers(
    diagnose: Diagnose, cluster: ClusterHandle, workloads: Workloads, client: ProbePod, web: Backend
) -> None:
    """A LoadBalancer Service gets an ingress IP or hostname, and it answers with a backend's hostname."""
    svc = workloads.service("loadbalancer", "service", NAME="web")
    deadline = cluster.settings.deadline(PENDING_S)
    started = time.monotonic()
    try:
        ingress = wait(
            f"an address for LoadBalancer Service {svc.namespace}/{svc.name}",
            lambda: (
                (cluster.kube.get("v1", "Service", svc.name, svc.namespace) or {})
                .get("status", {})
                .get("loadBalancer", {})
                .get("ingress")
            ),
            deadline,
            interval_s=1,
        )
    except WaitTimeout:
        cluster.require(
            "loadbalancer",
            f"no LoadBalancer implementation (Service stayed pending for {time.monotonic() - started:.0f} s)",
        )
        return
    address = ingress[0].get("ip") or ingress[0].get("hostname")
    url = f"http://{address}:{svc.port()}/hostname"
    diagnose.until(
        lambda: probes.http(client, url),
        lambda r: r.ok and r.body.strip() in web.names,
        via=client,
        what="the LoadBalancer address does not answer with a backend",
        expected=f"HTTP 200 from one of {sorted(web.names)}",
        objects=[f"service {svc.namespace}/{svc.name} at {address}"],
        deadline_s=30,
    )
