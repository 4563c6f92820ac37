"""LoadBalancer Services: an address is assigned and answers from inside and outside the cluster,
externalTrafficPolicy Local keeps the client's address and steers health checks to nodes with a backend, and
loadBalancerSourceRanges keeps everyone else out.

No Service here is open to any source: each names the sources that may reach it (its probe pods, and the runner
where the runner's own address is known: the local cluster; on a cloud the runner sits behind NAT).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from fixtures.bulk import expect_bulk, expect_runner_bulk
from fixtures.cluster import ClusterHandle, nodes_under_test
from fixtures.diagnostics import Diagnose
from fixtures.ingress import IngressController
from fixtures.preconditions import Precondition, service_proxy
from fixtures.prestart import Stage
from fixtures.workloads import Backend, PodRef, ServiceRef, Workloads, request_echo
from netconform import probes
from netconform.at_once import at_once
from netconform.errors import WaitTimeout
from netconform.kube import wait
from netconform.probes import ProbePod

pytestmark = pytest.mark.loadbalancer

#: The run's probe pod is this module's client: no check here depends on the client's namespace.
SHARED_CLIENT = True

#: A source outside loadBalancerSourceRanges gets no answer within this long.
DENIED_S = 2.0
#: The module's own probe pod outside the source ranges, where no other pinned probe pod of the run is.
OUTSIDER = "outsider"


def prestart(stage: Stage) -> None:
    """The backends and probe pods take the cluster seconds to start: requested at the start of the run. The
    Services follow once the probe pods' addresses (their allowed sources) are known."""
    nodes = nodes_under_test(stage.cluster)
    if len(nodes) == 1:
        stage.workloads.request_client(OUTSIDER)
    if stage.run:
        request_echo(stage.run)
        stage.run.request_pinned_client(nodes[-1])


@pytest.fixture(scope="module")
def web(run_echo: Backend) -> Backend:
    """The backends: the run's shared nc-echo servers (no check here changes them). The module's Services live in
    the run's namespace with them."""
    return run_echo


@pytest.fixture(scope="module")
def local(run_workloads: Workloads, cluster: ClusterHandle) -> Backend:
    """One server on the last tested node, where with externalTrafficPolicy Local only that node may serve: the
    run's probe pod pinned there (an nc-echo server too, selected by its own `app` label; no check here probes from
    it through this Service)."""
    pod = run_workloads.pinned_client(nodes_under_test(cluster)[-1])
    return Backend(pod.name, pod.namespace, (PodRef(pod.name, pod.ip, pod.node),))


@pytest.fixture(scope="module")
def outsider(cluster: ClusterHandle, workloads: Workloads, run_workloads: Workloads, client: ProbePod) -> ProbePod:
    """A pod that no Service here admits: the run's per-node probe pod on the last tested node, which is not the
    module's client (the run's probe pod, pinned to the first tested node: the ranges admit it); on one node, a
    probe pod of the module's own."""
    nodes = nodes_under_test(cluster)
    if len(nodes) > 1:
        pod = run_workloads.pinned_client(nodes[-1])
        if pod.name != client.name:
            return pod
    return workloads.client(OUTSIDER)


def answered_by(backend: Backend) -> Callable[[probes.HttpResult], bool]:
    """An HTTP 200 whose body names one of `backend`'s pods (its /hostname)."""
    return lambda r: r.ok and r.body.strip() in backend.names


def runner_reaches(cluster: ClusterHandle) -> bool:
    """Whether the runner's own address is the one a LoadBalancer sees (no NAT between): the local cluster."""
    return cluster.info.local_cluster


def allowed_sources(cluster: ClusterHandle, client: ProbePod) -> list[str]:
    """Who may reach the module's Services: its probe pod, and the runner where the runner's own address is the one
    a LoadBalancer sees."""
    sources = [client.ip]
    first = cluster.info.nodes[0].internal_ip
    if runner_reaches(cluster) and first:
        sources.append(probes.runner_source_ip(first))
    return sources


@dataclass(frozen=True)
class Balancer:
    service: ServiceRef
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.service.port()}"

    def describe(self) -> str:
        return f"service {self.service.namespace}/{self.service.name} at {self.address}"


def create(workloads: Workloads, name: str, backend: str, sources: list[str], policy: str = "Cluster") -> ServiceRef:
    """A LoadBalancer Service in front of Deployment `backend` that admits only `sources`."""
    docs = workloads.render("loadbalancer", "service", NAME=name, BACKEND=backend, POLICY=policy)
    docs[0]["spec"]["loadBalancerSourceRanges"] = sorted(f"{s}/32" for s in sources)
    return ServiceRef.of(workloads.apply(docs)[0])


def address_of(cluster: ClusterHandle, svc: ServiceRef) -> Balancer:
    """Wait for the Service's address; with no implementation in the cluster, end the check unsupported."""
    __tracebackhide__ = True
    implementation = cluster.info.loadbalancer.implementation
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
            cluster.settings.deadline(cluster.settings.lb_wait),
            interval_s=0.2,
        )
    except WaitTimeout:
        if implementation:
            raise  # the cluster has an implementation: a Service it never serves is a failure, not a skip
        cluster.require(
            "loadbalancer",
            f"no LoadBalancer implementation found in the API, and the Service stayed pending for "
            f"{time.monotonic() - started:.0f} s (--lb-wait)",
        )
        raise
    return Balancer(svc, ingress[0].get("ip") or ingress[0].get("hostname"))


@pytest.fixture(scope="module")
def balancers(
    cluster: ClusterHandle, run_workloads: Workloads, client: ProbePod, outsider: ProbePod, web: Backend, local: Backend
) -> dict[str, ServiceRef]:
    """The module's Services, created together once the probe pods' addresses are known (addresses are assigned
    side by side; each check waits only for its own), in the run's namespace with their backends."""
    allowed = allowed_sources(cluster, client)
    return {
        "web": create(run_workloads, "lb-web", web.name, allowed),
        "local": create(run_workloads, "lb-local", local.name, allowed, policy="Local"),
        "ranged": create(run_workloads, "lb-ranged", web.name, [client.ip]),
    }


@pytest.fixture(scope="module")
def proxy(cluster: ClusterHandle, client: ProbePod, balancers: dict[str, ServiceRef]) -> Precondition:
    """Every path to a LoadBalancer address ends in the Service proxy (the implementation only gets the packets to a
    node): if it does not answer on the web Service's own ClusterIP (probed once), the checks fail at once with that
    cause instead of each waiting out its deadline."""
    return service_proxy(cluster, client, balancers["web"])


def neighbour_state(address: str) -> str:
    """What the runner's ARP table says of an address (a layer 2 announcement answered or not)."""
    try:
        out = subprocess.run(["ip", "neigh", "show", "to", address], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (no `ip` here)"
    return out.stdout.strip() or "no entry"


ANNOUNCE_HINT = (
    "pods reach the address through the service proxy on their own node; the runner needs a node to announce it "
    "(layer 2: answer ARP for it; BGP: advertise a route). No answer from the runner while pods pass means no node "
    "announces it"
)


def runner_answer(
    diagnose: Diagnose,
    cluster: ClusterHandle,
    lb: Balancer,
    path: str,
    ok: Callable[[probes.HttpResult], bool],
    what: str,
    expected: str,
    host: str | None = None,
    base: str | None = None,
) -> probes.HttpResult:
    """The runner's request to the LoadBalancer address (`base`: another scheme or port of it), polled until `ok`;
    else fail naming what a missing announcement looks like from outside (with the runner's neighbour entry for the
    address). An HTTPS certificate is not verified here: TLS has checks of its own."""
    __tracebackhide__ = True
    url = f"{base or lb.url}{path}"
    insecure = url.startswith("https:")
    try:
        return probes.eventually(
            lambda: probes.runner_http(url, timeout_s=2, host=host, insecure=insecure),
            ok,
            cluster.settings.deadline(probes.PROBE_S),
        )
    except probes.NotConsistent as e:
        diagnose.fail(
            what,
            expected=expected,
            observed=f"{e.last.summary()}; the runner's neighbour entry for {lb.address}: "
            f"{neighbour_state(lb.address)}",
            objects=[lb.describe(), *([f"Host {host}"] if host else [])],
            reproduce=shlex.join(
                [
                    "curl",
                    "-sS",
                    "-m",
                    "3",
                    *(["-k"] if insecure else []),
                    *(["-H", f"Host: {host}"] if host else []),
                    url,
                ]
            ),
            hint=ANNOUNCE_HINT,
        )


def test_loadbalancer_gets_an_address_that_answers(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    web: Backend,
    balancers: dict[str, ServiceRef],
) -> None:
    """A LoadBalancer Service gets an address, and it answers with a backend's hostname from a pod and from the
    runner."""
    proxy.require()
    lb = address_of(cluster, balancers["web"])
    diagnose.until(
        probes.http_probe(client, f"{lb.url}/hostname"),
        answered_by(web),
        via=client,
        what="the LoadBalancer address does not answer a pod with a backend",
        expected=f"HTTP 200 from one of {sorted(web.names)}",
        objects=[lb.describe()],
    )
    if runner_reaches(cluster):
        runner_answer(
            diagnose,
            cluster,
            lb,
            "/hostname",
            answered_by(web),
            "the LoadBalancer address answers pods but not the runner, outside the cluster",
            f"HTTP 200 from one of {sorted(web.names)}",
        )


# The module's two longest checks follow the first, not last: xdist hands a worker its next module when two
# checks of the current one are left, and that module then waited behind them.
def controller_endpoints(cluster: ClusterHandle, ctrl: IngressController) -> tuple[list[str], dict[str, int]]:
    """The ingress controller's ready pod addresses and its HTTP and HTTPS target ports, from its Service's
    EndpointSlices (read only)."""
    svc = cluster.kube.get("v1", "Service", ctrl.service.name, ctrl.service.namespace) or {}
    names = {p["port"]: p.get("name", "") for p in svc.get("spec", {}).get("ports") or []}
    want = {"http": names.get(ctrl.service.http_port, ""), "https": names.get(ctrl.service.https_port or 443, "")}
    ips: set[str] = set()
    ports: dict[str, int] = {}
    for sl in cluster.kube.list_objects(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        ctrl.service.namespace,
        f"kubernetes.io/service-name={ctrl.service.name}",
    ):
        for key, name in want.items():
            for p in sl.get("ports") or []:
                if p.get("name", "") == name and p.get("port"):
                    ports[key] = int(p["port"])
        for e in sl.get("endpoints") or []:
            if (e.get("conditions") or {}).get("ready") is not False:
                ips.update(e.get("addresses") or [])
    return sorted(ips), ports


def test_loadbalancer_routes_hosts_to_backends_over_http_and_https(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    run_workloads: Workloads,
    client: ProbePod,
    web: Backend,
    ingress_controller: IngressController,
    balancers: dict[str, ServiceRef],
) -> None:
    """(The id avoids the word that `-k` uses to select the Ingress area.) The ingress controller behind a
    LoadBalancer address (a Service of this run listing the controller's pods):
    a host routes through that address to its backend over HTTP and over HTTPS, from a pod (and from the runner on the
    local cluster)."""
    proxy.require()
    ctrl = ingress_controller
    ips, ports = controller_endpoints(cluster, ctrl)
    if not ips or set(ports) != {"http", "https"}:
        diagnose.fail(
            "the ingress controller's Service does not list its pods on HTTP and HTTPS ports",
            expected="ready endpoints with an HTTP and an HTTPS port",
            observed=f"addresses {ips}, ports {ports}",
            objects=[f"service {ctrl.service.namespace}/{ctrl.service.name}"],
        )
    host = f"lb.{run_workloads.namespace}.{cluster.settings.ingress_domain}"
    docs = run_workloads.render(
        "loadbalancer",
        "ingress-front",
        HOST=host,
        BACKEND=balancers["web"].name,
        CLASS=ctrl.ingress_class.name,
        HTTP_TARGET=ports["http"],
        HTTPS_TARGET=ports["https"],
    )
    docs[0]["spec"]["loadBalancerSourceRanges"] = sorted(f"{s}/32" for s in allowed_sources(cluster, client))
    docs[1]["endpoints"] = [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]
    applied = run_workloads.apply(docs)[0]
    lb = address_of(cluster, ServiceRef.of(applied))
    objects = [
        lb.describe(),
        f"Host {host}",
        f"controller pods {ips} (service {ctrl.service.namespace}/{ctrl.service.name})",
    ]
    for scheme, port in (("http", 80), ("https", 443)):
        url = f"{scheme}://{host}:{port}/hostname"
        diagnose.until(
            probes.http_probe(client, url, resolve=f"{host}:{port}:{lb.address}", insecure=scheme == "https"),
            answered_by(web),
            via=client,
            what=f"Host {host} does not route through the ingress controller's LoadBalancer address over "
            f"{scheme.upper()}",
            expected=f"HTTP 200 from one of {sorted(web.names)}",
            objects=objects,
        )
    if not runner_reaches(cluster):
        return
    for scheme, port in (("http", 80), ("https", 443)):
        runner_answer(
            diagnose,
            cluster,
            lb,
            "/hostname",
            answered_by(web),
            f"Host {host} does not route through the ingress controller's LoadBalancer address from the runner over "
            f"{scheme.upper()}",
            f"HTTP 200 from one of {sorted(web.names)}",
            host=host,
            base=f"{scheme}://{lb.address}:{port}",
        )


def test_loadbalancer_source_ranges_keep_other_sources_out(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    outsider: ProbePod,
    web: Backend,
    balancers: dict[str, ServiceRef],
) -> None:
    """loadBalancerSourceRanges admitting one pod: that pod gets an answer; another pod, and the runner, get none."""
    proxy.require()
    lb = address_of(cluster, balancers["ranged"])
    url = f"{lb.url}/hostname"
    diagnose.until(
        probes.http_probe(client, url),
        answered_by(web),
        via=client,
        what="the LoadBalancer address does not answer the one source its ranges admit",
        expected=f"HTTP 200 from one of {sorted(web.names)}",
        objects=[lb.describe(), f"loadBalancerSourceRanges {client.ip}/32"],
    )
    legs = {"pod " + outsider.name: lambda: probes.http(outsider, url, timeout_s=DENIED_S)}
    if runner_reaches(cluster):
        legs["the runner"] = lambda: probes.runner_http(url, timeout_s=DENIED_S)
    seen = dict(zip(legs, at_once(lambda f: f(), list(legs.values())), strict=True))
    answered = {who: r for who, r in seen.items() if r.status is not None}
    diagnose.check(
        not answered,
        "a source outside loadBalancerSourceRanges got an answer",
        expected=f"no answer within {DENIED_S:.0f}s for " + ", ".join(seen),
        observed="; ".join(f"{who}: {r.summary()}" for who, r in answered.items()),
        objects=[lb.describe(), f"loadBalancerSourceRanges {client.ip}/32", outsider.describe()],
        reproduce=[outsider.repro(probes.curl_command(url)), f"curl -sS -m 3 {url}"],
    )


def test_loadbalancer_carries_1_mib_each_way(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    web: Backend,
    balancers: dict[str, ServiceRef],
) -> None:
    """Through the LoadBalancer address, from a pod and from the runner, 1 MiB uploaded and 1 MiB downloaded arrive
    whole."""
    proxy.require()
    lb = address_of(cluster, balancers["web"])
    expect_bulk(
        diagnose,
        probes.bulk_probe(client, lb.url),
        "a 1 MiB transfer through the LoadBalancer address does not arrive whole",
        [client.describe(), lb.describe()],
    )
    if runner_reaches(cluster):
        expect_runner_bulk(
            diagnose,
            lb.url,
            "a 1 MiB transfer between the runner and the LoadBalancer address does not arrive whole",
            [lb.describe(), f"the runner's neighbour entry for {lb.address}: {neighbour_state(lb.address)}"],
            hint=ANNOUNCE_HINT,
        )


def test_loadbalancer_local_policy_keeps_the_client_address_and_health_checks_only_backend_nodes(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    client: ProbePod,
    local: Backend,
    balancers: dict[str, ServiceRef],
) -> None:
    """externalTrafficPolicy Local: the backend sees the runner's own address, and the Service's health check
    node port answers 200 only on nodes with a backend (503 elsewhere), which is how a load balancer picks nodes."""
    proxy.require()
    lb = address_of(cluster, balancers["local"])
    svc = cluster.kube.get("v1", "Service", lb.service.name, lb.service.namespace) or {}
    hc_port = svc["spec"].get("healthCheckNodePort")
    diagnose.check(
        bool(hc_port),
        "a Local LoadBalancer Service has no healthCheckNodePort",
        expected="spec.healthCheckNodePort set by the API server",
        observed=str(hc_port),
        objects=[lb.describe()],
    )
    backend_nodes = {p.node for p in local.pods}
    nodes = nodes_under_test(cluster)
    addresses = {n.name: n.internal_ip for n in cluster.info.nodes}

    def health(node: str) -> probes.HttpResult:
        return probes.http(client, f"http://{addresses[node]}:{hc_port}/healthz", timeout_s=2)

    def right(node: str, r: probes.HttpResult) -> bool:
        return r.status == (200 if node in backend_nodes else 503)

    end = time.monotonic() + cluster.settings.deadline(probes.PROBE_S)
    while True:
        seen = dict(zip(nodes, at_once(health, nodes), strict=True))
        if all(right(n, r) for n, r in seen.items()) or time.monotonic() >= end:
            break
    wrong = {n: r for n, r in seen.items() if not right(n, r)}
    diagnose.check(
        not wrong,
        "the health check node port does not tell nodes with a backend from nodes without",
        expected="; ".join(f"{n}: HTTP {200 if n in backend_nodes else 503}" for n in nodes),
        observed="; ".join(f"{n}: {r.summary()}" for n, r in seen.items()),
        objects=[
            lb.describe(),
            f"healthCheckNodePort {hc_port}",
            *(f"backend {local.namespace}/{p.name} ({p.ip}) on {p.node}" for p in local.pods),
        ],
        reproduce=[client.repro(probes.curl_command(f"http://{addresses[n]}:{hc_port}/healthz")) for n in wrong],
    )
    if not runner_reaches(cluster):
        return
    me = probes.runner_source_ip(lb.address)
    got = runner_answer(
        diagnose,
        cluster,
        lb,
        "/clientip",
        lambda r: r.ok,
        "the Local LoadBalancer address does not answer the runner",
        "HTTP 200",
    )
    seen_ip = got.body.strip().rsplit(":", 1)[0]
    diagnose.check(
        seen_ip == me,
        "externalTrafficPolicy Local did not keep the client's address through the LoadBalancer",
        expected=f"the backend sees source {me}",
        observed=f"source {seen_ip}",
        objects=[lb.describe(), *(f"backend {local.namespace}/{p.name} ({p.ip}) on {p.node}" for p in local.pods)],
        reproduce=f"curl -sS {lb.url}/clientip",
    )
