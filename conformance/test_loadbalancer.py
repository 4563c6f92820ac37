"""LoadBalancer Services: an address is assigned and answers with a backend, or the cluster has no implementation."""

from __future__ import annotations

import time

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.workloads import Backend, ServiceRef, Workloads
from netconform import probes
from netconform.errors import WaitTimeout
from netconform.kube import wait
from netconform.probes import ProbePod

pytestmark = pytest.mark.loadbalancer


def source_ranges(cluster: ClusterHandle) -> list[str]:
    """Who may reach the LoadBalancer: the cluster's own pods and nodes, and the runner where its source is known.

    The Service exposes a backend outside the cluster, so it is never left open to any source. On a cloud the
    runner's public source is unknown (NAT); there the probe runs from a pod only.
    """
    ranges = {cidr for n in cluster.info.nodes for cidr in n.pod_cidrs}
    ranges |= {f"{n.internal_ip}/32" for n in cluster.info.nodes if n.internal_ip}
    if cluster.info.local_cluster and cluster.info.nodes[0].internal_ip:
        ranges.add(f"{probes.runner_source_ip(cluster.info.nodes[0].internal_ip)}/32")
    return sorted(ranges)


def test_loadbalancer_gets_an_address_that_answers(
    diagnose: Diagnose, cluster: ClusterHandle, workloads: Workloads, client: ProbePod, web: Backend
) -> None:
    """A LoadBalancer Service gets an ingress IP or hostname, and it answers with a backend's hostname."""
    docs = workloads.render("loadbalancer", "service", NAME="web")
    docs[0]["spec"]["loadBalancerSourceRanges"] = source_ranges(cluster)
    applied = workloads.apply(docs)[0]
    svc = ServiceRef(
        applied["metadata"]["name"], workloads.namespace, applied["spec"].get("clusterIP"), applied["spec"]
    )
    implementation = cluster.info.loadbalancer.implementation
    deadline = cluster.settings.deadline(cluster.settings.lb_wait)
    started = time.monotonic()
    try:
        ingress = wait(
            f"an address for LoadBalancer Service {svc.namespace}/{svc.name}"
            + (f" from {implementation}" if implementation else ""),
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
        if implementation:
            raise  # the cluster has an implementation: a Service it never serves is a failure, not a skip
        cluster.require(
            "loadbalancer",
            f"no LoadBalancer implementation found in the API, and the Service stayed pending for "
            f"{time.monotonic() - started:.0f} s (--lb-wait)",
        )
        return
    address = ingress[0].get("ip") or ingress[0].get("hostname")
    url = f"http://{address}:{svc.port()}/hostname"
    diagnose.until(
        probes.http_probe(client, url),
        lambda r: r.ok and r.body.strip() in web.names,
        via=client,
        what="the LoadBalancer address does not answer with a backend",
        expected=f"HTTP 200 from one of {sorted(web.names)}",
        objects=[f"service {svc.namespace}/{svc.name} at {address}"],
        deadline_s=30,
    )
