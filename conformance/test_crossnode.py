"""Every node pair: pod-to-pod over TCP, UDP and ICMP without SNAT, path MTU, node<->pod, Services across nodes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from fixtures import bulk
from fixtures.cluster import ClusterHandle, nodes_under_test
from fixtures.diagnostics import Diagnose
from fixtures.observations import Observer
from fixtures.preconditions import Precondition, service_proxy
from fixtures.prestart import Stage
from fixtures.workloads import ServiceRef, Workloads, pinned_client_name
from netconform import probes
from netconform.areas import not_applicable
from netconform.at_once import at_once
from netconform.probes import PodProbe, ProbePod

pytestmark = pytest.mark.crossnode

MIB = probes.MIB


def request_remote_services(cluster: ClusterHandle, run: Workloads) -> dict[str, ServiceRef]:
    """Per node: a ClusterIP and two NodePort Services (Cluster, Local) whose only backend is that node's pinned probe
    pod (the run's own, in the run's namespace: a Service selects pods of its own namespace only). Keyed by node, and
    by "node/Cluster" and "node/Local" for the NodePorts."""
    out = {}
    for node in nodes_under_test(cluster):
        app = pinned_client_name(node)  # the pod's name and its `app` label: the ClusterIP Service's name selects it
        out[node] = run.service("clusterip", "service", NAME=app)
        for policy in ("Cluster", "Local"):
            out[f"{node}/{policy}"] = run.service(
                "nodeport", "service", NAME=f"{app}-np-{policy.lower()}", APP=app, POLICY=policy
            )
    return out


def prestart(stage: Stage) -> None:
    """The run's pinned probe pods and their Services, requested at the start of the run."""
    if stage.run:
        for node in nodes_under_test(stage.cluster):
            stage.run.request_pinned_client(node)
        request_remote_services(stage.cluster, stage.run)


@pytest.fixture(scope="module")
def node_pods(cluster: ClusterHandle, run_workloads: Workloads) -> dict[str, ProbePod]:
    """The run's pinned probe pod on each node, an nc-echo server and a client at once (the checks of other modules
    probe from the same pods: no node starts a pod of its own for this module); node name -> pod."""
    return {node: run_workloads.pinned_client(node) for node in nodes_under_test(cluster)}


def pair(node_pods: dict[str, ProbePod], node_pair: tuple[str, str]) -> tuple[ProbePod, ProbePod]:
    return node_pods[node_pair[0]], node_pods[node_pair[1]]


def objects(src: ProbePod, dst: ProbePod) -> list[str]:
    return [f"client {src.describe()}", f"server {dst.describe()}"]


def upload_probe(src: ProbePod, ip: str) -> probes.PodProbe[probes.Bulk]:
    """1 MiB posted to the server's /upload and 1 MiB downloaded from its /bytes."""
    return probes.bulk_probe(src, f"http://{ip}:8080")


@dataclass(frozen=True)
class PairProbes:
    """Every pair's probes, first run all at once: one exec per source node probes every peer side by side, so the
    cost grows with the nodes, not with the pairs. A check whose first attempts did not hold retries on its own."""

    probes: dict[tuple[str, str, str], tuple[PodProbe[Any], int]]
    first: dict[tuple[str, str, str], list[Any]]
    mtu: dict[str, int]

    def get(self, node_pair: tuple[str, str], kind: str) -> tuple[PodProbe[Any], int, list[Any]]:
        key = (*node_pair, kind)
        probe, n = self.probes[key]
        return probe, n, self.first.get(key, [])


@pytest.fixture(scope="module")
def pair_probes(
    node_pods: dict[str, ProbePod], remote_service: dict[str, ServiceRef], node_pairs: list[tuple[str, str]]
) -> PairProbes:
    """TCP and UDP (client address), ICMP, path MTU (DF ping, 1 MiB each way) and a ClusterIP with its only backend on
    the destination node, for every pair, probed together."""
    reads = at_once(lambda p: p.run(["cat", "/sys/class/net/eth0/mtu"]), list(node_pods.values()))
    mtus = dict(zip(node_pods, reads, strict=True))
    mtu = {node: int(r.stdout.strip() or 1500) for node, r in mtus.items()}
    table: dict[tuple[str, str, str], tuple[PodProbe[Any], int]] = {}
    for a, b in node_pairs:
        src, dst = node_pods[a], node_pods[b]
        svc = remote_service[b]
        table[(a, b, "tcp")] = (probes.tcp_probe(src, dst.ip, 8080, "/clientip"), 3)
        table[(a, b, "udp")] = (probes.udp_probe(src, dst.ip, 8081, "clientip"), 3)
        table[(a, b, "icmp")] = (probes.ping_probe(src, dst.ip), 1)
        size = mtu[a] - 28  # IPv4 header 20 + ICMP header 8
        table[(a, b, "mtu")] = (probes.ping_probe(src, dst.ip, count=2, size=size, dont_fragment=True), 1)
        table[(a, b, "upload")] = (upload_probe(src, dst.ip), 1)
        table[(a, b, "clusterip")] = (probes.http_probe(src, f"http://{svc.cluster_ip}:80/hostname"), 3)
    return PairProbes(table, probes.run_together(table), mtu)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_crossnode_pod_to_pod_keeps_the_client_ip(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    node_pods: dict[str, ProbePod],
    pair_probes: PairProbes,
    node_pair: tuple[str, str],
    proto: str,
    observe: Observer,
) -> None:
    """Pod to pod by IP, for every ordered node pair: the server answers and sees the client's pod IP (no SNAT)."""
    src, dst = pair(node_pods, node_pair)
    attempt, n, first = pair_probes.get(node_pair, proto)
    seen_ip = lambda r: r.text.strip().rsplit(":", 1)[0].strip("[]")  # noqa: E731
    with observe.pair(proto, node_pair, src.repro(attempt.command)):
        try:
            got = probes.eventually(attempt, lambda r: r.ok, cluster.settings.deadline(probes.PROBE_S), n, first=first)
        except probes.NotConsistent as e:
            diagnose.involve(src.namespace, src.name, dst.name)
            diagnose.fail(
                f"{proto.upper()} from {node_pair[0]} to {node_pair[1]} fails",
                expected=f"{proto.upper()} answers from {dst.ip} (3 in a row)",
                observed=e.last.summary(),
                objects=objects(src, dst),
                reproduce=src.repro(e.last.command),
                hint="a timeout usually means a missing route to the other node's pod CIDR, or a drop",
            )
        diagnose.check(
            seen_ip(got) == src.ip,
            f"the server on {node_pair[1]} does not see the client's pod IP",
            expected=f"source {src.ip} (no SNAT between pods)",
            observed=f"source {got.text.strip()}",
            objects=objects(src, dst),
            reproduce=src.repro(got.command),
        )


def test_crossnode_pod_to_pod_icmp(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    node_pods: dict[str, ProbePod],
    pair_probes: PairProbes,
    node_pair: tuple[str, str],
    observe: Observer,
) -> None:
    """Pod to pod ICMP echo by IP, for every ordered node pair."""
    src, dst = pair(node_pods, node_pair)
    attempt, n, first = pair_probes.get(node_pair, "icmp")
    with observe.pair("icmp", node_pair, src.repro(attempt.command)):
        try:
            probes.eventually(attempt, lambda r: r.ok, cluster.settings.deadline(probes.PROBE_S), n, first=first)
        except probes.NotConsistent as e:
            diagnose.fail(
                f"ICMP from {node_pair[0]} to {node_pair[1]} fails",
                expected="3 of 3 echo replies",
                observed=e.last.output.strip()[-200:],
                objects=objects(src, dst),
                reproduce=src.repro(e.last.command),
            )


def test_crossnode_path_mtu(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    node_pods: dict[str, ProbePod],
    pair_probes: PairProbes,
    node_pair: tuple[str, str],
    observe: Observer,
) -> None:
    """The largest don't-fragment ICMP the pod MTU allows gets through, and so does 1 MiB each way."""
    src, dst = pair(node_pods, node_pair)
    mtu = pair_probes.mtu[node_pair[0]]
    attempt, n, first = pair_probes.get(node_pair, "mtu")
    upload, _, first_upload = pair_probes.get(node_pair, "upload")
    with observe.pair("mtu", node_pair, src.repro(attempt.command)):
        try:
            probes.eventually(attempt, lambda r: r.ok, cluster.settings.deadline(probes.PROBE_S), n, first=first)
        except probes.NotConsistent as e:
            diagnose.fail(
                f"full-size packets from {node_pair[0]} to {node_pair[1]} are lost",
                expected=f"echo replies to {mtu - 28}-byte pings with DF set (pod MTU {mtu})",
                observed=e.last.output.strip()[-200:] or "timeout",
                objects=objects(src, dst),
                reproduce=src.repro(e.last.command),
                hint="replies to small pings but not to full-size ones is a path-MTU black hole",
            )
        res: probes.Bulk = first_upload[-1] if first_upload and first_upload[-1].ok else upload()
        diagnose.check(
            res.ok,
            f"a 1 MiB transfer each way between {node_pair[0]} and {node_pair[1]} does not arrive whole",
            expected=bulk.EXPECTED,
            observed=res.summary() + ("" if res.up_sent or res.down_received else " (a black hole for large packets?)"),
            objects=objects(src, dst),
            reproduce=src.repro(upload.command),
        )


def node_ip_of(cluster: ClusterHandle, node: str) -> str:
    return str(next(n.internal_ip for n in cluster.info.nodes if n.name == node))


@pytest.fixture(scope="module")
def node_probes(
    cluster: ClusterHandle,
    node_clients: Workloads,
    node_pods: dict[str, ProbePod],
    node_pairs: list[tuple[str, str]],
) -> PairProbes:
    """Node to pod (a hostNetwork pod on node a to the pod on node b) and pod to node (the pod on b pings a's
    address), for every pair, probed together: one exec per node's host pod and one per pod."""
    hosts = {node: node_clients.node_client(node) for node in node_pods}
    table: dict[tuple[str, str, str], tuple[PodProbe[Any], int]] = {}
    for a, b in node_pairs:
        table[(a, b, "node-to-pod")] = (probes.tcp_probe(hosts[a], node_pods[b].ip, 8080), 3)
        table[(a, b, "pod-to-node")] = (probes.ping_probe(node_pods[b], node_ip_of(cluster, a)), 1)
    return PairProbes(table, probes.run_together(table), {})


@pytest.mark.privileged
def test_crossnode_node_to_pod_and_pod_to_node(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    node_pods: dict[str, ProbePod],
    node_probes: PairProbes,
    node_pair: tuple[str, str],
) -> None:
    """A hostNetwork pod on one node reaches a pod on the other; that pod reaches the first node's address."""
    a, b = node_pair
    dst = node_pods[b]
    attempt, _, first = node_probes.get(node_pair, "node-to-pod")
    diagnose.until(
        attempt,
        lambda r: r.ok,
        via=attempt.pod,
        what=f"node {a} does not reach pod {dst.name} on {b}",
        expected=f"HTTP 200 from {dst.ip}",
        objects=[dst.describe()],
        first=first,
    )
    # Pod to node: the kubelet's health port would need credentials; ICMP to the node address needs nothing.
    attempt, _, first = node_probes.get(node_pair, "pod-to-node")
    diagnose.until(
        attempt,
        lambda r: r.ok,
        via=dst,
        what=f"pod {dst.name} on {b} does not reach node {a} ({node_ip_of(cluster, a)})",
        expected="3 of 3 echo replies",
        objects=[f"node {a}"],
        observed=lambda last: last.output.strip()[-200:],
        successes=1,
        first=first,
    )


@pytest.fixture(scope="module")
def remote_service(
    cluster: ClusterHandle, run_workloads: Workloads, node_pods: dict[str, ProbePod]
) -> dict[str, ServiceRef]:
    """Per node: a ClusterIP and two NodePort Services (Cluster, Local) whose only backend is that node's pod."""
    out = request_remote_services(cluster, run_workloads)
    for key, svc in out.items():
        node = key.split("/")[0]
        run_workloads.wait_endpoints(svc.name, {node_pods[node].ip})
    return out


@pytest.fixture(scope="module")
def proxy(
    cluster: ClusterHandle, node_pods: dict[str, ProbePod], remote_service: dict[str, ServiceRef]
) -> Precondition:
    """The Service proxy answers at all: a ClusterIP whose backend is on the client's own node."""
    first = sorted(node_pods)[0]
    return service_proxy(cluster, node_pods[first], remote_service[first])


def test_crossnode_clusterip_with_its_only_backend_on_another_node(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    node_pods: dict[str, ProbePod],
    remote_service: dict[str, ServiceRef],
    pair_probes: PairProbes,
    node_pair: tuple[str, str],
    observe: Observer,
) -> None:
    """A client on one node reaches a ClusterIP whose only backend runs on the other node."""
    proxy.require()
    src, dst = pair(node_pods, node_pair)
    svc = remote_service[node_pair[1]]
    attempt, _, first = pair_probes.get(node_pair, "clusterip")
    with observe.pair("clusterip", node_pair, src.repro(attempt.command)):
        diagnose.until(
            attempt,
            lambda r: r.ok and r.body.strip() == dst.name,
            first=first,
            via=src,
            what=f"ClusterIP {svc.cluster_ip} from {node_pair[0]} does not reach its backend on {node_pair[1]}",
            expected=f"HTTP 200 from {dst.name}",
            objects=[f"server {dst.describe()}", f"service {svc.namespace}/{svc.name}"],
        )


@dataclass(frozen=True)
class RunnerProbe:
    """An HTTP request from the machine running the suite (no pod, no exec)."""

    url: str
    timeout_s: float = 3

    def __call__(self) -> probes.HttpResult:
        return probes.runner_http(self.url, timeout_s=self.timeout_s)


@pytest.fixture(scope="module")
def nodeport_firsts(
    cluster: ClusterHandle, remote_service: dict[str, ServiceRef], node_pairs: list[tuple[str, str]]
) -> dict[tuple[str, str, str], probes.HttpResult]:
    """The first request to every node's NodePort for every backend node and policy, all at once from the runner:
    a node that must stay silent costs its 2 s timeout once, side by side with all the others, not in a queue."""
    if not cluster.info.local_cluster:
        return {}
    keys = [(entry, backend, policy) for entry, backend in node_pairs for policy in ("Cluster", "Local")]

    def first(key: tuple[str, str, str]) -> probes.HttpResult:
        entry, backend, policy = key
        svc = remote_service[f"{backend}/{policy}"]
        return probes.runner_http(f"http://{node_ip_of(cluster, entry)}:{svc.node_port()}/clientip", timeout_s=2)

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(keys, pool.map(first, keys), strict=True))


@pytest.mark.parametrize("policy", ["Cluster", "Local"])
def test_crossnode_nodeport_on_every_node_by_traffic_policy(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    node_pods: dict[str, ProbePod],
    remote_service: dict[str, ServiceRef],
    nodeport_firsts: dict[tuple[str, str, str], probes.HttpResult],
    node_pair: tuple[str, str],
    policy: str,
) -> None:
    """NodePort on node A for a backend on node B, from outside the pod network (the runner): Cluster answers on
    every node; Local only where the backend runs, and there the backend sees the client's own address."""
    proxy.require()
    if not cluster.info.local_cluster:
        not_applicable(
            "needs a client outside the pod network that may reach node addresses: the local cluster's runner"
        )
    entry, backend_node = node_pair
    backend = node_pods[backend_node]
    svc = remote_service[f"{backend_node}/{policy}"]
    node_ip = node_ip_of(cluster, entry)
    url = f"http://{node_ip}:{svc.node_port()}/clientip"
    objs = [f"node {entry} ({node_ip})", backend.describe(), f"service {svc.namespace}/{svc.name}"]
    first = nodeport_firsts[(entry, backend_node, policy)]
    if policy == "Cluster" or entry == backend_node:
        try:
            got = probes.eventually(
                RunnerProbe(url), lambda r: r.ok, cluster.settings.deadline(probes.PROBE_S), first=[first]
            )
        except probes.NotConsistent as e:
            diagnose.fail(
                f"NodePort ({policy}) on {entry} does not answer for a backend on {backend_node}",
                expected="HTTP 200",
                observed=e.last.summary(),
                objects=objs,
                reproduce=f"curl -sS {url}",
            )
        if policy == "Local":
            seen = got.body.strip().rsplit(":", 1)[0]
            me = probes.runner_source_ip(node_ip)
            diagnose.check(
                seen == me,
                "externalTrafficPolicy Local did not keep the client's address",
                expected=f"source {me}",
                observed=f"source {seen}",
                objects=objs,
                reproduce=f"curl -sS {url}",
            )
    else:
        diagnose.check(
            first.status is None,
            f"NodePort (Local) answered on {entry}, which has no backend",
            expected="no answer (dropped)",
            observed=first.summary(),
            objects=objs,
            reproduce=f"curl -sS {url}",
        )
