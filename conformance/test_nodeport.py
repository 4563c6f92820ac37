"""NodePort Services answer on every node's address, from pods, from the runner, and on the node's localhost."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from fixtures.bulk import expect_bulk
from fixtures.cluster import ClusterHandle, nodes_under_test
from fixtures.diagnostics import Diagnose
from fixtures.namespaces import run_id
from fixtures.observations import Observer
from fixtures.preconditions import Precondition, service_proxy
from fixtures.prestart import Stage
from fixtures.workloads import ECHO, Backend, ServiceRef, Workloads, request_echo
from netconform import probes
from netconform.areas import not_applicable, unsupported
from netconform.probes import HttpResult, ProbePod

pytestmark = pytest.mark.nodeport

#: The run's probe pod is this module's client: no check here depends on the client's namespace.
SHARED_CLIENT = True

NODEPORT_RANGE = range(30000, 32768)  # the API server's default --service-node-port-range


#: The NodePort Service, in the run's namespace in front of the run's shared nc-echo servers (fixtures.workloads).
SERVICE = "nodeport"


def prestart(stage: Stage) -> None:
    """The run's shared servers and the NodePort Service, requested at the start of the run."""
    if stage.run:
        request_echo(stage.run)
        stage.run.service("nodeport", "service", NAME=SERVICE, APP=ECHO, POLICY="Cluster")


def prestart_privileged(stage: Stage) -> None:
    """A hostPort server on each tested node."""
    for name in nodes_under_test(stage.cluster):
        stage.workloads.apply(hostport_docs(stage.workloads, name))


def host_port() -> int:
    """This run's hostPort: one per run (two runs on one cluster would otherwise take the same port on each node),
    outside the NodePort range."""
    return 20000 + int(hashlib.sha256(run_id().encode()).hexdigest(), 16) % 5000


def hostport_docs(ws: Workloads, node: str) -> list[dict[str, Any]]:
    return ws.render("nodeport", "hostport", NAME=f"hostport-{node}"[:50], NODE=node, HOST_PORT=host_port())


@pytest.fixture(scope="module")
def web(run_echo: Backend) -> Backend:
    """The replicas: the run's shared nc-echo servers (no check here changes them)."""
    return run_echo


@pytest.fixture(scope="module")
def service(run_workloads: Workloads, web: Backend) -> ServiceRef:
    """A NodePort Service (externalTrafficPolicy Cluster) in front of the nc-echo replicas."""
    svc = run_workloads.service("nodeport", "service", NAME=SERVICE, APP=ECHO, POLICY="Cluster")  # as in prestart
    run_workloads.wait_endpoints(SERVICE, web.ips)
    return svc


@pytest.fixture(scope="module")
def proxy(cluster: ClusterHandle, client: ProbePod, service: ServiceRef) -> Precondition:
    """The Service proxy answers on the Service's ClusterIP at all; NodePort checks need it."""
    return service_proxy(cluster, client, service)


def node_ip(cluster: ClusterHandle, name: str) -> str:
    ip = next((n.internal_ip for n in cluster.info.nodes if n.name == name), None)
    if not ip:
        unsupported("nodeport", f"node {name} has no InternalIP", cluster.settings.require)
    return ip


def expect_backend(
    diagnose: Diagnose, what: str, attempt, web: Backend, deadline: float, objects: list[str], repro: str
) -> None:
    __tracebackhide__ = True
    try:
        probes.eventually(attempt, lambda r: r.ok and r.body.strip() in web.names, deadline)
    except probes.NotConsistent as e:
        last: HttpResult = e.last
        diagnose.fail(
            what,
            expected=f"HTTP 200 from one of {', '.join(sorted(web.names))} (3 in a row)",
            observed=last.summary(),
            objects=objects,
            reproduce=repro,
        )


def test_nodeport_is_allocated_in_the_node_port_range(diagnose: Diagnose, service: ServiceRef) -> None:
    """The allocated nodePort lies in the cluster's NodePort range."""
    port = service.node_port()
    diagnose.check(
        port in NODEPORT_RANGE,
        "nodePort outside the NodePort range",
        expected=f"{NODEPORT_RANGE.start}-{NODEPORT_RANGE.stop - 1}",
        observed=str(port),
        objects=[f"service {service.namespace}/{service.name}"],
    )


def test_nodeport_answers_on_every_node_from_a_pod(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    service: ServiceRef,
    web: Backend,
    node_name: str,
    observe: Observer,
) -> None:
    """From a pod, <node InternalIP>:<nodePort> answers with a backend, on every node."""
    proxy.require()
    url = f"http://{node_ip(cluster, node_name)}:{service.node_port()}/hostname"
    diagnose.involve(service.namespace, client.name, *web.names)
    with observe.pair("nodeport", (client.node, node_name), client.repro(probes.curl_command(url))):
        expect_backend(
            diagnose,
            f"NodePort does not answer on node {node_name} from a pod",
            probes.http_probe(client, url),
            web,
            cluster.settings.deadline(probes.PROBE_S),
            [
                client.describe(),
                f"service {service.namespace}/{service.name} nodePort {service.node_port()}",
                f"node {node_name}",
            ],
            client.repro(probes.curl_command(url)),
        )


def test_nodeport_udp_spreads_over_the_replicas_on_every_node(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    service: ServiceRef,
    web: Backend,
    node_name: str,
    observe: Observer,
) -> None:
    """From a pod, UDP datagrams to <node InternalIP>:<UDP nodePort>, each from a new socket, are all answered,
    by every replica, on every node."""
    proxy.require()
    replicas = web.names
    target = f"udp:{node_ip(cluster, node_name)}:{service.node_port('udp')}"
    count = probes.requests_to_reach_all(len(replicas), p_fail=1e-6)
    try:  # the first round that reaches every replica: the proxy has programmed them all
        got = probes.eventually(
            lambda: probes.echo_round(client, [target] * count),
            lambda r: set(r.counts) == replicas and not r.failures,
            cluster.settings.deadline(probes.PROBE_S),
            successes=1,
        )
    except probes.NotConsistent as e:
        last: probes.EchoRound = e.last
        missing = replicas - set(last.counts)
        diagnose.fail(
            f"UDP through the NodePort on node {node_name} is not answered by every replica",
            expected=f"{count} answers, from each of {sorted(replicas)}",
            observed=(f"never answered: {', '.join(sorted(missing))}; " if missing else "") + last.summary(),
            objects=[
                client.describe(),
                f"service {service.namespace}/{service.name} UDP nodePort {service.node_port('udp')}",
                f"node {node_name}",
            ],
            reproduce=client.repro(last.command),
        )
    observe.spread(f"NodePort UDP on node {node_name}", got.counts, replicas, count, 1)
    diagnose.check(
        set(got.counts) <= replicas,
        "UDP answers came from pods that are not replicas",
        expected=str(sorted(replicas)),
        observed=got.summary(),
    )


def test_nodeport_carries_1_mib_each_way_on_every_node(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    service: ServiceRef,
    node_name: str,
) -> None:
    """Through <node InternalIP>:<nodePort>, from a pod, 1 MiB uploaded and 1 MiB downloaded arrive whole."""
    proxy.require()
    expect_bulk(
        diagnose,
        probes.bulk_probe(client, f"http://{node_ip(cluster, node_name)}:{service.node_port()}"),
        f"a 1 MiB transfer through the NodePort on node {node_name} does not arrive whole",
        [
            client.describe(),
            f"service {service.namespace}/{service.name} nodePort {service.node_port()}",
            f"node {node_name}",
        ],
    )


def test_nodeport_answers_on_every_node_from_the_runner(
    proxy: Precondition, diagnose: Diagnose, cluster: ClusterHandle, service: ServiceRef, web: Backend, node_name: str
) -> None:
    """From the machine running the suite, <node InternalIP>:<nodePort> answers, where node addresses are reachable."""
    proxy.require()
    if not cluster.info.local_cluster:
        not_applicable("whether the runner may reach node addresses is known only on netconform's local cluster")
    url = f"http://{node_ip(cluster, node_name)}:{service.node_port()}/hostname"

    diagnose.involve(service.namespace, *web.names)
    expect_backend(
        diagnose,
        f"NodePort does not answer on node {node_name} from the runner",
        lambda: probes.runner_http(url),
        web,
        cluster.settings.deadline(probes.PROBE_S),
        [f"service {service.namespace}/{service.name}", f"node {node_name}"],
        f"curl -sS {url}",
    )


@pytest.mark.privileged
def test_nodeport_answers_on_localhost_of_every_node(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    node_clients: Workloads,
    service: ServiceRef,
    web: Backend,
    node_name: str,
) -> None:
    """On each node itself (a hostNetwork pod), localhost:<nodePort> answers."""
    proxy.require()
    node_client = node_clients.node_client(node_name)
    url = f"http://127.0.0.1:{service.node_port()}/hostname"
    diagnose.involve(service.namespace, *web.names)
    expect_backend(
        diagnose,
        f"NodePort does not answer on localhost of node {node_name}",
        probes.http_probe(node_client, url),
        web,
        cluster.settings.deadline(probes.PROBE_S),
        [node_client.describe(), f"service {service.namespace}/{service.name}"],
        node_client.repro(probes.curl_command(url)),
    )


@pytest.mark.privileged
def test_nodeport_host_port_answers_on_its_node(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    privileged_workloads: Workloads,
    client: ProbePod,
    node_name: str,
    observe: Observer,
) -> None:
    """A pod with a hostPort answers on its own node's address at that port, from a pod (and from the runner on the
    local cluster): the CNI's portmap plugin set it up when the pod was created."""
    if node_name not in nodes_under_test(cluster):
        not_applicable(f"node {node_name} is not among the sampled nodes (--node-sample)")
    ws = privileged_workloads
    ws.apply(hostport_docs(ws, node_name))
    pod = ws.wait_pod(f"hostport-{node_name}"[:50])
    url = f"http://{node_ip(cluster, node_name)}:{host_port()}/hostname"
    objects = [f"pod {ws.namespace}/{pod.name} ({pod.ip}) hostPort {host_port()}", f"node {node_name}"]
    hint = "hostPort is the CNI's job (the portmap plugin in its conflist, with capabilities portMappings)"
    with observe.pair("hostport", (client.node, node_name), client.repro(probes.curl_command(url))):
        try:
            probes.eventually(
                probes.http_probe(client, url), lambda r: r.ok and r.body.strip() == pod.name, probes.PROBE_S
            )
        except probes.NotConsistent as e:
            diagnose.fail(
                f"hostPort {host_port()} on node {node_name} does not reach its pod",
                expected=f"HTTP 200 from {pod.name}",
                observed=e.last.summary(),
                objects=[client.describe(), *objects],
                reproduce=client.repro(probes.curl_command(url)),
                hint=hint,
            )
        if cluster.info.local_cluster:
            try:
                probes.eventually(
                    lambda: probes.runner_http(url), lambda r: r.ok and r.body.strip() == pod.name, probes.PROBE_S
                )
            except probes.NotConsistent as e:
                diagnose.fail(
                    f"hostPort {host_port()} on node {node_name} does not answer the runner",
                    expected=f"HTTP 200 from {pod.name}",
                    observed=e.last.summary(),
                    objects=objects,
                    reproduce=f"curl -sS {url}",
                    hint=hint,
                )
