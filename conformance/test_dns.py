"""Service DNS: names resolve from a pod through its own resolver configuration, over UDP and TCP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fixtures.cluster import ClusterHandle, nodes_under_test
from fixtures.diagnostics import Diagnose
from fixtures.observations import Observer
from fixtures.preconditions import Precondition, cluster_dns_object
from fixtures.prestart import Stage
from fixtures.workloads import ServiceRef, Workloads
from netconform import probes
from netconform.at_once import at_once
from netconform.probes import ProbePod

pytestmark = pytest.mark.dns

#: The run's probe pod is this module's client, and the module's objects live beside it in the run's namespace, so
#: its short names resolve there as in a namespace of the module's own: a pod and a namespace fewer per run (#12).
SHARED_CLIENT = True

#: The ClusterIP Service whose names are resolved (short, namespaced, fully qualified, SRV).
SERVICE = "dns-web"


def prestart(stage: Stage) -> None:
    """The pod with its own DNS name and settings, the Service in front of it, and a probe pod on every node,
    requested at the start of the run."""
    if stage.run:
        stage.run.apply(member_docs(stage.cluster, stage.run))
        stage.run.apply(web_service_docs(stage.run))
        for node in nodes_under_test(stage.cluster):
            stage.run.request_pinned_client(node)


def member_docs(cluster: ClusterHandle, ws: Workloads) -> list[dict[str, Any]]:
    return ws.render("dns", "member", DNS_IP=cluster.info.dns_service_ip, DOMAIN=cluster.info.cluster_domain)


def web_service_docs(ws: Workloads) -> list[dict[str, Any]]:
    """A ClusterIP Service named SERVICE whose backend is the member pod (a pod of its own would only cost a
    start)."""
    docs = ws.render("clusterip", "service", NAME=SERVICE)
    docs[0]["spec"]["selector"] = {"app": "crew"}
    return docs


@pytest.fixture(scope="module")
def service(run_workloads: Workloads, member: ProbePod) -> ServiceRef:
    """A ClusterIP Service named SERVICE with one ready backend (the member pod)."""
    svc = next(d for d in run_workloads.apply(web_service_docs(run_workloads)) if d["kind"] == "Service")
    run_workloads.wait_endpoints(SERVICE, {member.ip})
    return ServiceRef.of(svc)


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
    """`dns-web`, `dns-web.<ns>` and `dns-web.<ns>.svc.<domain>` resolve to the ClusterIP, over UDP and over TCP."""
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
            cluster_dns_object(cluster),
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


def test_dns_srv_records_name_each_named_port(
    cluster_dns: Precondition, diagnose: Diagnose, cluster: ClusterHandle, client: ProbePod, service: ServiceRef
) -> None:
    """`_http._tcp.dns-web.<ns>.svc.<domain>` and `_udp._udp.dns-web...` are SRV records naming the Service and its
    port."""
    cluster_dns.require()
    fqdn = names(service, cluster.info.cluster_domain)["fqdn"]
    for port, proto, number in (("http", "tcp", 80), ("udp", "udp", 81)):
        name = f"_{port}._{proto}.{fqdn}"
        want = f"0 100 {number} {fqdn}."
        diagnose.until(
            probes.lookup_probe(client, name, "SRV", search=False),
            has_srv(want),
            via=client,
            what=f"no SRV record for the named port {port}/{proto.upper()}",
            expected=f"{name} SRV {want}",
            objects=[f"service {service.namespace}/{service.name}", cluster_dns_object(cluster)],
            successes=1,
        )


def has_srv(want: str) -> Callable[[probes.DnsAnswer], bool]:
    return lambda a: want in a.values("SRV")


@pytest.fixture(scope="module")
def member(cluster: ClusterHandle, run_workloads: Workloads) -> ProbePod:
    """The pod with hostname "member" under headless Service "crew", and dnsPolicy None, once ready."""
    run_workloads.apply(member_docs(cluster, run_workloads))
    pod = run_workloads.wait_pod("member")
    return ProbePod(run_workloads.kube, run_workloads.namespace, pod.name, pod.ip, pod.node)


def test_dns_pod_hostname_and_subdomain_get_their_own_a_record(
    cluster_dns: Precondition, diagnose: Diagnose, cluster: ClusterHandle, client: ProbePod, member: ProbePod
) -> None:
    """A pod with hostname and subdomain (a headless Service of that name) resolves as
    <hostname>.<subdomain>.<ns>.svc.<domain> to its own IP."""
    cluster_dns.require()
    name = f"member.crew.{member.namespace}.svc.{cluster.info.cluster_domain}"
    diagnose.until(
        probes.lookup_probe(client, name, search=False),
        lambda a: a.values("A") == {member.ip},
        via=client,
        what="a pod's hostname under its subdomain does not resolve to the pod",
        expected=f"{name} A {member.ip}",
        objects=[member.describe(), f"service {member.namespace}/crew (headless)", cluster_dns_object(cluster)],
    )


def test_dns_policy_none_uses_exactly_the_pods_dns_config(
    cluster_dns: Precondition, diagnose: Diagnose, cluster: ClusterHandle, member: ProbePod, service: ServiceRef
) -> None:
    """dnsPolicy None: the pod's resolv.conf has exactly its dnsConfig (nameserver, search list, ndots 3), and a
    short name resolves through that search list."""
    cluster_dns.require()
    res = member.run(["cat", "/etc/resolv.conf"])
    servers, search, options = probes.parse_resolv_conf(res.stdout)
    want_search = [f"{member.namespace}.svc.{cluster.info.cluster_domain}", "netconform.invalid"]
    diagnose.check(
        servers == [cluster.info.dns_service_ip] and search == want_search and options.get("ndots") == "3",
        "dnsPolicy None did not give the pod exactly its dnsConfig",
        expected=f"nameserver {cluster.info.dns_service_ip}; search {' '.join(want_search)}; options ndots:3",
        observed=" / ".join(line for line in res.stdout.splitlines() if line.strip()),
        objects=[member.describe()],
        reproduce=member.repro(["cat", "/etc/resolv.conf"]),
    )
    diagnose.until(
        probes.lookup_probe(member, service.name),
        lambda a: a.values("A") == {service.cluster_ip},
        via=member,
        what="a short name does not resolve through the search list of dnsConfig",
        expected=f"{service.name} A {service.cluster_ip}",
        objects=[f"service {service.namespace}/{service.name}", cluster_dns_object(cluster)],
    )


def dns_replicas(cluster: ClusterHandle) -> dict[str, tuple[str, str]]:
    """The cluster DNS Service's ready endpoints: address -> (pod name, node name)."""
    found = {}
    for sl in cluster.kube.list_objects(
        "discovery.k8s.io/v1", "EndpointSlice", "kube-system", "kubernetes.io/service-name=kube-dns"
    ):
        for e in sl.get("endpoints") or []:
            if (e.get("conditions") or {}).get("ready") is not False:
                for ip in e.get("addresses") or []:
                    found[ip] = ((e.get("targetRef") or {}).get("name", "?"), e.get("nodeName") or "?")
    return dict(sorted(found.items()))


def test_dns_every_replica_answers_from_every_node(
    diagnose: Diagnose, cluster: ClusterHandle, run_workloads: Workloads, observe: Observer
) -> None:
    """Every cluster DNS replica, asked directly (not through the Service), answers the API server's name from a
    pod on every tested node: one replica that is down or failing is named here even while lookups through the
    Service still find a working one. (It does not wait on the lookup through the Service, the run's DNS
    precondition: when that fails, this check is the one that says which replica is silent.)"""
    replicas = dns_replicas(cluster)
    name = f"kubernetes.default.svc.{cluster.info.cluster_domain}"
    clients = {n: run_workloads.pinned_client(n) for n in nodes_under_test(cluster)}
    pairs = [(node, ip) for node in clients for ip in replicas]

    def ask(pair: tuple[str, str]) -> probes.DnsAnswer:
        node, ip = pair
        try:  # the first right answer (a pod just started may wait for its route), or the last wrong one
            return probes.eventually(
                probes.lookup_probe(clients[node], name, search=False, server=ip),
                lambda a: a.status == "NOERROR" and bool(a.values("A")),
                probes.PROBE_S / 2,
                successes=1,
            )
        except probes.NotConsistent as e:
            last: probes.DnsAnswer = e.last
            return last

    answers = dict(zip(pairs, at_once(ask, pairs), strict=True))
    bad = {p: a for p, a in answers.items() if not (a.status == "NOERROR" and a.values("A"))}
    for (node, ip), a in answers.items():
        pod, replica_node = replicas[ip]
        observe.cell(
            "dns", (node, replica_node), (node, ip) not in bad, clients[node].repro(a.command), a.summary(), pod
        )
    diagnose.check(
        bool(replicas) and not bad,
        "a cluster DNS replica does not answer when asked directly",
        expected=f"{name} A from each replica {sorted(replicas)} to a pod on each of {sorted(clients)}",
        observed="; ".join(
            f"replica {replicas[ip][0]} ({ip}) from {node}: {a.summary()}" for (node, ip), a in bad.items()
        )
        or "no replicas listed",
        objects=[
            "service kube-system/kube-dns",
            *(f"replica {pod} ({ip}) on {n}" for ip, (pod, n) in replicas.items()),
        ],
        reproduce=[clients[node].repro(a.command) for (node, _), a in bad.items()],
    )
