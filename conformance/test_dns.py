"""Service DNS: names resolve from a pod through its own resolver configuration, over UDP and TCP."""

from __future__ import annotations

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.preconditions import Precondition
from fixtures.prestart import Stage
from fixtures.workloads import Backend, ServiceRef, Workloads
from netconform import probes
from netconform.probes import ProbePod

pytestmark = pytest.mark.dns


def prestart(stage: Stage) -> None:
    """The backend and its Service, requested at the start of the run."""
    stage.workloads.request_server("web", replicas=1)
    stage.workloads.service("clusterip", "service", NAME="web")


@pytest.fixture(scope="module")
def service(workloads: Workloads) -> ServiceRef:
    """A ClusterIP Service named `web` with one ready backend."""
    backend: Backend = workloads.server("web", replicas=1)
    svc = workloads.service("clusterip", "service", NAME="web")
    workloads.wait_endpoints("web", backend.ips)
    return svc


def names(svc: ServiceRef, domain: str) -> dict[str, str]:
    return {
        "short": svc.name,
        "namespaced": f"{svc.name}.{svc.namespace}",
        "fqdn": f"{svc.name}.{svc.namespace}.svc.{domain}",
    }


@pytest.mark.parametrize("proto", ["udp", "tcp"])
@pytest.mark.parametrize("form", ["short", "namespaced", "fqdn"])
def test_dns_service_name_resolves_to_clusterip(
    cluster_dns: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    service: ServiceRef,
    form: str,
    proto: str,
) -> None:
    """`web`, `web.<ns>` and `web.<ns>.svc.<domain>` resolve to the ClusterIP, over UDP and over TCP."""
    cluster_dns.require()
    name = names(service, cluster.info.cluster_domain)[form]
    diagnose.until(
        probes.lookup_probe(client, name, tcp=proto == "tcp"),
        lambda a: a.values("A") == {service.cluster_ip},
        via=client,
        what=f"{name} does not resolve to the Service's ClusterIP over {proto.upper()}",
        expected=f"A {service.cluster_ip}",
        objects=[
            f"service {service.namespace}/{service.name}",
            f"cluster DNS {cluster.info.dns_service} {cluster.info.dns_service_ip}",
        ],
    )


def test_dns_pod_resolv_conf_names_cluster_dns_and_search_list(
    diagnose: Diagnose, cluster: ClusterHandle, client: ProbePod
) -> None:
    """The pod's /etc/resolv.conf names the cluster DNS Service and the search list <ns>.svc, svc, domain."""
    res = client.run(["cat", "/etc/resolv.conf"])
    servers, search, _ = probes.parse_resolv_conf(res.stdout)
    domain = cluster.info.cluster_domain
    want_search = [f"{client.namespace}.svc.{domain}", f"svc.{domain}", domain]
    ok = servers[:1] == [cluster.info.dns_service_ip] and search[:3] == want_search
    diagnose.check(
        ok,
        "the pod's resolver does not point at the cluster DNS",
        expected=f"nameserver {cluster.info.dns_service_ip}; search {' '.join(want_search)}",
        observed=f"nameserver {' '.join(servers) or '(none)'}; search {' '.join(search) or '(none)'}",
        objects=[client.describe()],
        reproduce=client.repro(["cat", "/etc/resolv.conf"]),
    )


def test_dns_cluster_dns_service_has_ready_endpoints(diagnose: Diagnose, cluster: ClusterHandle) -> None:
    """The cluster DNS Service (kube-system/kube-dns) has ready endpoints."""
    w = Workloads(cluster, "kube-system")
    eps = w.endpoint_addresses("kube-dns")
    diagnose.check(
        bool(eps),
        "the cluster DNS Service has no ready endpoints",
        expected="at least one ready DNS server",
        observed="none",
        objects=["service kube-system/kube-dns"],
        reproduce=cluster.kube.kubectl(
            "get", "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns"
        ),
    )
