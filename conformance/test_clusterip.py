"""ClusterIP Services: traffic reaches every replica, fairly; EndpointSlices follow the ready pods."""

from __future__ import annotations

import time

import pytest

from fixtures.bulk import expect_bulk
from fixtures.cluster import ClusterHandle, nodes_under_test
from fixtures.diagnostics import Diagnose
from fixtures.observations import Observer
from fixtures.preconditions import Precondition, service_proxy
from fixtures.prestart import Stage
from fixtures.workloads import Backend, PodRef, ServiceRef, Workloads
from netconform import probes
from netconform.at_once import at_once
from netconform.diagnose import summarize_counts
from netconform.errors import WaitTimeout
from netconform.kube import wait
from netconform.probes import ProbePod

pytestmark = pytest.mark.clusterip

#: The run's probe pod is this module's client: no check here depends on the client's namespace.
SHARED_CLIENT = True

REPLICAS = 3
#: Services with a short session affinity: each client's affinity to a replica lapses after this long idle. Many
#: of them, because one lapse lands on the same replica again with probability 1/3: all of them 3^-LAPSES.
AFFINITY_TIMEOUT_S = 2
LAPSES = 10


def prestart(stage: Stage) -> None:
    """The replicas, their Services and the probe pods, requested at the start of the run."""
    ws = stage.workloads
    ws.request_server("web", replicas=REPLICAS)
    ws.apply(ws.render("clusterip", "mixed"))
    if stage.run:
        for node in nodes_under_test(stage.cluster):
            stage.run.request_pinned_client(node)
    request_services(ws)


def request_services(ws: Workloads) -> dict[str, ServiceRef]:
    """Every Service of the module as the API server holds it, by name (applying again is a no-op). Requested all at
    once: with the API server 100 ms away, one after another and each read back, they took 3 s (measured)."""
    wanted: list[tuple[str, dict[str, object]]] = [
        ("service", {"NAME": "web"}),
        ("affinity", {"NAME": "sticky", "TIMEOUT": 10800}),
        *(("affinity", {"NAME": f"lapse-{i}", "TIMEOUT": AFFINITY_TIMEOUT_S}) for i in range(LAPSES)),
        ("dual-protocol", {}),
        ("node-local", {}),
    ]
    return {ref.name: ref for ref in at_once(lambda w: ws.service("clusterip", w[0], **w[1]), wanted)}


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


@pytest.fixture(scope="module")
def services(workloads: Workloads, service: ServiceRef) -> dict[str, ServiceRef]:
    """The module's Services in front of the same replicas, by name."""
    return request_services(workloads)


def svc_ip(workloads: Workloads, name: str) -> str:
    return str((workloads.kube.get("v1", "Service", name, workloads.namespace) or {})["spec"]["clusterIP"])


#: How long the EndpointSlice controller may take to list a pod that just got its address.
SLICES_S = 15.0


def current_replicas(workloads: Workloads) -> tuple[PodRef, ...]:
    """The web replicas now (a check of this module replaces one)."""
    pods = workloads.wait_ready("app=web", REPLICAS, "Deployment web")
    workloads.wait_endpoints("web", {p.ip for p in pods})
    return pods


def check_spread(
    diagnose: Diagnose,
    observe: Observer,
    cluster: ClusterHandle,
    client: ProbePod,
    svc: ServiceRef,
    backends: set[str],
) -> None:
    __tracebackhide__ = True
    count = probes.requests_for_spread(len(backends))
    url = f"http://{svc.cluster_ip}:{svc.port()}/hostname"
    # Ready EndpointSlices do not mean kube-proxy (or its replacement) has programmed them yet: first wait, up to
    # the probe deadline, until a burst reaches every current replica and no other pod (a connection sent to a
    # deleted pod's address by rules not yet updated times out: a failure); then measure. If that never happens
    # the measurement below says which replica is missing or how many requests failed.
    burst = probes.requests_to_reach_all(len(backends), p_fail=1e-3)
    try:
        probes.eventually(
            lambda: probes.spread(client, url, burst),
            lambda s: set(s.counts) == backends and not s.failures,
            diagnose.scale * probes.PROBE_S,
            successes=1,
        )
    except probes.NotConsistent:
        pass
    got = probes.spread(client, url, count)
    floor = count / len(backends) / 3
    observe.spread(f"ClusterIP {svc.namespace}/{svc.name}, TCP", got.counts, backends, count, floor)
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
    proxy: Precondition,
    diagnose: Diagnose,
    observe: Observer,
    cluster: ClusterHandle,
    client: ProbePod,
    service: ServiceRef,
    web: Backend,
) -> None:
    """Requests to the ClusterIP reach all 3 replicas, none with less than a third of its fair share."""
    proxy.require()
    check_spread(diagnose, observe, cluster, client, service, web.names)


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
    observe: Observer,
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
    check_spread(diagnose, observe, cluster, client, service, names)


def test_clusterip_session_affinity_keeps_a_client_on_one_replica(
    proxy: Precondition, diagnose: Diagnose, workloads: Workloads, client: ProbePod, services: dict[str, ServiceRef]
) -> None:
    """sessionAffinity ClientIP: after a client's first connection, its next 20 (new connections, side by side)
    all reach the same replica."""
    proxy.require()
    current_replicas(workloads)
    target = f"tcp:{services['sticky'].cluster_ip}:80"
    first = probes.settled(lambda: probes.echo_round(client, [target]), lambda r: not r.failures)
    diagnose.check(
        not first.failures, "the affinity Service does not answer", expected="an answer", observed=first.summary()
    )
    got = probes.echo_round(client, [target] * 20)
    diagnose.check(
        set(got.counts) == set(first.counts) and not got.failures,
        "session affinity ClientIP did not keep the client on one replica",
        expected=f"all 20 answers from {first.answers[0][2]}, the replica of the first connection",
        observed=got.summary(),
        objects=[client.describe(), f"service {workloads.namespace}/sticky ({services['sticky'].cluster_ip})"],
        reproduce=client.repro(got.command),
    )


def test_clusterip_session_affinity_lapses_after_its_timeout(
    proxy: Precondition, diagnose: Diagnose, workloads: Workloads, client: ProbePod, services: dict[str, ServiceRef]
) -> None:
    """sessionAffinity ClientIP with timeoutSeconds 2, on 10 Services: a second connection at once reaches the first
    one's replica on every Service; after 3 s idle the choice is made anew, so at least one Service moves (all 10
    staying put by chance: 3^-10)."""
    proxy.require()
    current_replicas(workloads)
    lapses = [services[f"lapse-{i}"] for i in range(LAPSES)]
    targets = [f"tcp:{s.cluster_ip}:80" for s in lapses]
    objects = [client.describe(), f"services lapse-0..{LAPSES - 1} in {workloads.namespace} (timeoutSeconds 2)"]
    first = probes.settled(lambda: probes.echo_round(client, targets), lambda r: not r.failures)
    again = probes.echo_round(client, targets)
    picked = [who for _, _, who in first.answers]
    diagnose.check(
        not first.failures and [who for _, _, who in again.answers] == picked,
        "session affinity did not hold within its timeout",
        expected=f"the same replica per Service twice in a row: {picked}",
        observed=f"first {first.summary()}; then {[who for _, _, who in again.answers]}",
        objects=objects,
        reproduce=client.repro(again.command),
    )
    # The timeout is what is measured: the client must stay silent past it (any connection would renew it).
    time.sleep(AFFINITY_TIMEOUT_S + 1)
    after = probes.echo_round(client, targets)
    moved = [t for (t, ok, who), before in zip(after.answers, picked, strict=True) if ok and who != before]
    diagnose.check(
        not after.failures and bool(moved),
        "session affinity did not lapse after timeoutSeconds",
        expected=f"after {AFFINITY_TIMEOUT_S + 1} s idle at least one of {LAPSES} Services picks another replica",
        observed=f"every Service answered from the same replica as before: {after.summary()}",
        objects=objects,
        reproduce=client.repro(after.command),
    )


def test_clusterip_udp_spreads_over_every_replica(
    proxy: Precondition,
    diagnose: Diagnose,
    observe: Observer,
    workloads: Workloads,
    client: ProbePod,
    service: ServiceRef,
) -> None:
    """UDP datagrams to the ClusterIP, each from a new socket, reach every replica and each is answered."""
    proxy.require()
    replicas = {p.name for p in current_replicas(workloads)}
    count = probes.requests_for_spread(len(replicas))
    target = f"udp:{service.cluster_ip}:{service.port('udp')}"
    # First until a burst reaches every current replica (the proxy has programmed them), then the measured round.
    burst = probes.requests_to_reach_all(len(replicas), p_fail=1e-3)
    probes.settled(lambda: probes.echo_round(client, [target] * burst), lambda r: set(r.counts) == replicas)
    got = probes.echo_round(client, [target] * count)
    observe.spread(f"ClusterIP {service.namespace}/{service.name}, UDP", got.counts, replicas, count, 1)
    missing = replicas - set(got.counts)
    diagnose.check(
        not missing and not got.failures and set(got.counts) == replicas,
        "UDP through the ClusterIP does not reach every replica, or goes unanswered",
        expected=f"{count} answers, from each of {sorted(replicas)}",
        observed=(f"never answered: {', '.join(sorted(missing))}; " if missing else "") + got.summary(),
        objects=[client.describe(), f"service {service.namespace}/{service.name} ({service.cluster_ip}) UDP 81"],
        reproduce=client.repro(got.command),
    )


def test_clusterip_one_port_number_serves_tcp_and_udp_from_different_servers(
    proxy: Precondition, diagnose: Diagnose, workloads: Workloads, client: ProbePod, services: dict[str, ServiceRef]
) -> None:
    """Port 80 of one Service on TCP (the HTTP server, port 8080) and on UDP (the UDP server, port 8081): each
    protocol reaches its own server; a proxy that keys on the port number alone sends one of them astray."""
    proxy.require()
    replicas = {p.name for p in current_replicas(workloads)}
    ip = services["dual"].cluster_ip
    got = probes.settled(
        lambda: probes.echo_round(client, [f"tcp:{ip}:80", f"udp:{ip}:80"]),
        lambda r: not r.failures and set(r.counts) <= replicas,
    )
    diagnose.check(
        not got.failures and set(got.counts) <= replicas,
        "one port number on TCP and UDP does not reach both servers",
        expected=f"TCP 80 and UDP 80 both answered by one of {sorted(replicas)}",
        observed=got.summary(),
        objects=[client.describe(), f"service {workloads.namespace}/dual ({ip})"],
        reproduce=client.repro(got.command),
    )


def test_clusterip_internal_traffic_policy_local_stays_on_the_client_node(
    proxy: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    run_workloads: Workloads,
    services: dict[str, ServiceRef],
) -> None:
    """internalTrafficPolicy Local, from a pod on every tested node: 20 requests reach only the replicas on the
    client's own node; a node without one answers none."""
    proxy.require()
    replicas = current_replicas(workloads)
    ip = services["node-local"].cluster_ip
    clients = {n: run_workloads.pinned_client(n) for n in nodes_under_test(cluster)}
    local = {n: {p.name for p in replicas if p.node == n} for n in clients}

    def right(node: str, got: probes.EchoRound) -> bool:
        return set(got.counts) == local[node] and bool(local[node]) != bool(got.failures)

    def observe(node: str) -> probes.EchoRound:
        # A Service just made may not be programmed on every node yet: each node's client polls, up to the probe
        # deadline, for a round that is right, and the check judges the last round seen.
        return probes.settled(lambda: probes.echo_round(clients[node], [f"tcp:{ip}:80"] * 20), lambda r: right(node, r))

    rounds = dict(zip(clients, at_once(observe, list(clients)), strict=True))
    wrong = {
        node: f"{node}: expected {sorted(local[node]) or 'no answer'}, {got.summary()}"
        for node, got in rounds.items()
        if not right(node, got)
    }
    diagnose.check(
        not wrong,
        "internalTrafficPolicy Local let traffic leave the client's node, or missed its local replica",
        expected="each node's client answered only by the replicas on its own node",
        observed="; ".join(wrong.values()),
        objects=[f"service {workloads.namespace}/node-local ({ip})", *(f"{p.name} on {p.node}" for p in replicas)],
        reproduce=[clients[n].repro(rounds[n].command) for n in wrong],
    )


@pytest.fixture(scope="module")
def mixed(workloads: Workloads) -> tuple[PodRef, PodRef]:
    """(the ready pod, the never-ready pod) behind Service "mixed", once the first is ready and the second runs."""
    workloads.apply(workloads.render("clusterip", "mixed"))
    ready = workloads.wait_ready("app=mixed-ready", 1, "Deployment mixed-ready")[0]

    def running() -> PodRef | None:
        pod = workloads.kube.get("v1", "Pod", "mixed-unready", workloads.namespace) or {}
        st = pod.get("status") or {}
        started = any(c.get("started") for c in st.get("containerStatuses") or [])
        return PodRef("mixed-unready", st["podIP"], pod["spec"]["nodeName"]) if started and st.get("podIP") else None

    unready = wait(f"pod {workloads.namespace}/mixed-unready running", running, workloads.deadline(60))
    return ready, unready


def test_clusterip_not_ready_pod_gets_no_traffic_and_is_not_a_ready_endpoint(
    proxy: Precondition, diagnose: Diagnose, workloads: Workloads, client: ProbePod, mixed: tuple[PodRef, PodRef]
) -> None:
    """Of two pods a Service selects, the one whose readiness probe fails is listed as not ready in the
    EndpointSlices and gets none of 30 requests; the ready one gets all."""
    proxy.require()
    ready, unready = mixed
    workloads.wait_endpoints("mixed", {ready.ip})
    ip = svc_ip(workloads, "mixed")
    listed: dict[str, bool] = {}

    def both_listed() -> dict[str, bool] | None:
        """Address -> ready, once both pods are in the slices (the controller adds the not-ready one on its own time:
        seen missing once right after the ready one was listed, on a loaded machine)."""
        slices = workloads.kube.list_objects(
            "discovery.k8s.io/v1", "EndpointSlice", workloads.namespace, "kubernetes.io/service-name=mixed"
        )
        listed.clear()
        listed.update(
            {
                a: bool((e.get("conditions") or {}).get("ready"))
                for s in slices
                for e in s.get("endpoints") or []
                for a in e["addresses"]
            }
        )
        return listed if {ready.ip, unready.ip} <= listed.keys() else None

    try:
        wait("both pods of Service mixed in its EndpointSlices", both_listed, SLICES_S)
    except WaitTimeout:
        pass  # the check says what was listed
    diagnose.check(
        listed.get(unready.ip) is False and listed.get(ready.ip) is True,
        "EndpointSlices do not tell the not-ready pod from the ready one",
        expected=f"{ready.ip} ready, {unready.ip} listed with ready=false",
        observed=str(listed),
        objects=[
            f"service {workloads.namespace}/mixed",
            f"pods mixed-ready ({ready.ip}), mixed-unready ({unready.ip})",
        ],
    )
    targets = [f"tcp:{ip}:80"] * 15 + [f"udp:{ip}:81"] * 15
    probes.settled(
        lambda: probes.echo_round(client, targets[:1] + targets[-1:]), lambda r: not r.failures
    )  # programmed
    got = probes.echo_round(client, targets)
    diagnose.check(
        set(got.counts) == {ready.name} and not got.failures,
        "traffic reached a pod that is not ready, or the ready one did not answer",
        expected=f"all 30 requests (TCP and UDP) answered by {ready.name}",
        observed=got.summary(),
        objects=[client.describe(), f"service {workloads.namespace}/mixed ({ip})", f"not ready: {unready.name}"],
        reproduce=client.repro(got.command),
    )


def test_clusterip_hairpin_a_pod_reaches_itself_through_its_service(
    proxy: Precondition, diagnose: Diagnose, workloads: Workloads, mixed: tuple[PodRef, PodRef]
) -> None:
    """The one ready pod behind Service "mixed" asks the Service's ClusterIP: the answer comes from itself (the
    bridge sends the packet back out of the port it came in on: hairpin)."""
    proxy.require()
    ready, _ = mixed
    workloads.wait_endpoints("mixed", {ready.ip})
    ip = svc_ip(workloads, "mixed")
    me = ProbePod(workloads.kube, workloads.namespace, ready.name, ready.ip, ready.node)
    got = probes.settled(
        lambda: probes.echo_round(me, [f"tcp:{ip}:80", f"udp:{ip}:81"]),
        lambda r: not r.failures and set(r.counts) == {ready.name},
    )
    diagnose.check(
        not got.failures and set(got.counts) == {ready.name},
        "a pod does not reach itself through its own Service (hairpin)",
        expected=f"TCP and UDP answered by {ready.name} itself",
        observed=got.summary(),
        objects=[me.describe(), f"service {workloads.namespace}/mixed ({ip})"],
        reproduce=me.repro(got.command),
    )


def test_clusterip_carries_1_mib_each_way(
    proxy: Precondition, diagnose: Diagnose, client: ProbePod, service: ServiceRef
) -> None:
    """Through the ClusterIP, 1 MiB uploaded and 1 MiB downloaded arrive whole."""
    proxy.require()
    expect_bulk(
        diagnose,
        probes.bulk_probe(client, f"http://{service.cluster_ip}:{service.port()}"),
        "a 1 MiB transfer through the ClusterIP does not arrive whole",
        [client.describe(), f"service {service.namespace}/{service.name} ({service.cluster_ip})"],
    )
