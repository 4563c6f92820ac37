"""ClusterIP Services: traffic reaches every replica, fairly; EndpointSlices follow the ready pods."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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
    ws.apply(ws.render("clusterip", "drain", STAYING_SET="spare"))
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


def settled(attempt: Callable[[], probes.EchoRound], ok: Callable[[probes.EchoRound], bool]) -> probes.EchoRound:
    """The first round that is `ok`, polled up to the probe deadline (a Service just made may not be programmed
    yet), or the last one seen: the check then says what it saw."""
    try:
        return probes.eventually(attempt, ok, probes.PROBE_S, successes=1)
    except probes.NotConsistent as e:
        last: probes.EchoRound = e.last
        return last


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


# The longest check of the module runs second, not last: xdist hands a worker its next module when two checks of
# the current one are left, and that module then waited behind this one (6 s) while other workers were idle.
#: The open connection of the terminating check: an upload that trickles on (a chunk every 50 ms) until the check
#: stops it, DRAIN_HOLD_S after the kubelet began to stop the pod; the server's byte count must match what was sent.
#: (A fixed-size upload had to outlast the slowest move to terminating and made the check take 6 s whatever the
#: cluster did.) At most DRAIN_CHUNKS chunks, so a check that dies mid-way leaves no endless upload behind.
DRAIN_FIRST = 64 * 1024
DRAIN_CHUNK = 4096
DRAIN_CHUNKS = 400
DRAIN_STOP = "/tmp/nc.drain.stop"
DRAIN_PROGRESS = "/tmp/nc.drain.n"
DRAIN_SENT = "/tmp/nc.drain.sent"
DRAIN_ANSWER = "/tmp/nc.drain"
#: How long the upload goes on after the kubelet began to stop the pod (its "Killing" event), and the chunks it must
#: send in that time. Next the kubelet runs the preStop hook (12 s here); a pod stopped without it gets SIGTERM at
#: once and SIGKILL after the kubelet's minimum grace of 2 s (`minimumGracePeriodInSeconds`; nc-echo, the pod's
#: PID 1, outlives SIGTERM), so an upload still answered 3 s later was served by a pod that drains.
DRAIN_HOLD_S = 3.0
DRAIN_AFTER = 4


def trickle_upload(url: str) -> list[str]:
    """A shell command: an upload to `url` sent in chunks until DRAIN_STOP exists (or the connection is gone); it
    prints "<curl's HTTP code> sent=<bytes sent> read=<the server's answer: the bytes it read>" (see drained)."""
    writer = (
        f"head -c {DRAIN_FIRST} /dev/zero; n=0; "
        f"while [ ! -e {DRAIN_STOP} ] && [ $n -lt {DRAIN_CHUNKS} ] && head -c {DRAIN_CHUNK} /dev/zero; "
        f"do n=$((n + 1)); echo $n >{DRAIN_PROGRESS}; sleep 0.05; done; "
        f"echo $(({DRAIN_FIRST} + n * {DRAIN_CHUNK})) >{DRAIN_SENT}"
    )
    return [
        "sh",
        "-c",
        f"rm -f {DRAIN_STOP} {DRAIN_PROGRESS} {DRAIN_SENT} {DRAIN_ANSWER}; ( {writer} ) | "
        f"curl -sS --max-time 30 -H 'Expect:' -T - -o {DRAIN_ANSWER} -w '%{{http_code}}' {url}; "
        f'printf " sent=%s read=%s\\n" "$(cat {DRAIN_SENT} 2>/dev/null)" "$(cat {DRAIN_ANSWER} 2>/dev/null)"',
    ]


def drained(stdout: str) -> tuple[str, str, str]:
    """(HTTP code, bytes sent, the server's answer) from what `trickle_upload` printed; the answer last, as it may be
    an error message with spaces."""
    m = re.match(r"(\S*) sent=(\S*) read=(.*)", stdout.strip(), re.S)
    return (m.group(1), m.group(2), m.group(3).strip()) if m else ("", "", stdout.strip()[:200])


@pytest.fixture(scope="module")
def drain(workloads: Workloads) -> tuple[PodRef, PodRef]:
    """(leaving, staying): Service "drain" has only "leaving" as its endpoint; "staying" runs outside it."""
    workloads.apply(workloads.render("clusterip", "drain", STAYING_SET="spare"))
    leaving, staying = workloads.wait_pod("leaving"), workloads.wait_pod("staying")
    workloads.wait_endpoints("drain", {leaving.ip})
    return leaving, staying


def kubelet_stopping(workloads: Workloads, pod: str) -> bool:
    """The kubelet has begun to stop `pod`: its "Killing" event, recorded just before the preStop hook runs."""
    return any(
        ev.get("reason") == "Killing" and (ev.get("involvedObject") or {}).get("name") == pod
        for ev in workloads.kube.list_objects("v1", "Event", workloads.namespace)
    )


def endpoint_conditions(workloads: Workloads, service: str, ip: str) -> dict[str, bool]:
    for sl in workloads.kube.list_objects(
        "discovery.k8s.io/v1", "EndpointSlice", workloads.namespace, f"kubernetes.io/service-name={service}"
    ):
        for e in sl.get("endpoints") or []:
            if ip in (e.get("addresses") or []):
                return {k: bool(v) for k, v in (e.get("conditions") or {}).items()}
    return {}


def test_clusterip_terminating_pod_finishes_open_connections_and_gets_no_new_ones(
    proxy: Precondition, diagnose: Diagnose, workloads: Workloads, client: ProbePod, drain: tuple[PodRef, PodRef]
) -> None:
    """An upload is open through the ClusterIP to pod "leaving", sent a chunk at a time; a second pod joins the
    Service and "leaving" is deleted (12 s preStop). Its EndpointSlice entry turns terminating while the upload goes
    on, past the kubelet's start of the pod's stop, and then completes whole; 20 new connections all reach the
    other pod."""
    proxy.require()
    leaving, staying = drain
    ip = svc_ip(workloads, "drain")
    objects = [
        client.describe(),
        f"service {workloads.namespace}/drain ({ip})",
        f"pods leaving ({leaving.ip}), staying ({staying.ip})",
    ]
    settled(lambda: probes.echo_round(client, [f"tcp:{ip}:80"]), lambda r: set(r.counts) == {"leaving"})
    # An upload, sent by the client a chunk at a time: the connection carries data until the check stops it (a
    # download would sit whole in the client's socket buffers, the server long done).
    upload = trickle_upload(f"http://{ip}:80/upload")
    stop = ["touch", DRAIN_STOP]
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(client.run, upload, 40)
        wait(
            f"the upload's connection to {ip}:80 established in {client.name}",
            lambda: f"{ip}:80" in client.run(["ss", "-Htn", "state", "established"]).stdout,
            workloads.deadline(10),
            interval_s=0.1,
        )
        workloads.apply(workloads.render("clusterip", "drain", STAYING_SET="drain"))
        workloads.wait_endpoints("drain", {leaving.ip, staying.ip})
        workloads.kube.delete("v1", "Pod", "leaving", workloads.namespace)

        def terminating() -> dict[str, bool] | None:
            c = endpoint_conditions(workloads, "drain", leaving.ip)
            return c if c.get("terminating") else None

        try:
            conditions: dict[str, bool] = wait(
                "pod leaving marked terminating in the EndpointSlice",
                terminating,
                workloads.deadline(10),
                interval_s=0.1,
            )
        except WaitTimeout:
            client.run(stop)
            res = slow.result()
            diagnose.fail(
                "a deleted pod never drained: it was not listed as terminating while its preStop ran",
                expected=f"pod leaving ({leaving.ip}) in the EndpointSlice with terminating=true for its 12 s preStop",
                observed=f"conditions {endpoint_conditions(workloads, 'drain', leaving.ip) or 'gone'}; the open "
                f"upload: {res.stdout.strip() or 'no answer'} {res.stderr.strip()[:200]}",
                objects=objects,
            )
        still_open = not slow.done()
        try:
            wait(
                "the kubelet stopping pod leaving (its Killing event)",
                lambda: slow.done() or kubelet_stopping(workloads, "leaving"),
                workloads.deadline(5),
                interval_s=0.1,
            )
        except WaitTimeout:
            pass  # events are best effort: by now (5 s into terminating) a pod killed without grace is gone

        def chunks_sent() -> int:
            got = client.run(["cat", DRAIN_PROGRESS]).stdout.strip()
            return int(got) if got.isdigit() else 0

        enough, hold_until = chunks_sent() + DRAIN_AFTER, time.monotonic() + DRAIN_HOLD_S
        try:
            wait(
                f"the upload going on for {DRAIN_HOLD_S:g} s and {DRAIN_AFTER} chunks to the pod being stopped",
                lambda: slow.done() or (time.monotonic() >= hold_until and chunks_sent() >= enough),
                workloads.deadline(10),
                interval_s=0.1,
            )
        except WaitTimeout:
            pass  # the connection stalled: stopped now, the upload's result says what happened to it
        client.run(stop)  # the open connection carried data while the kubelet stopped the pod: now it ends
        res = slow.result()
        fresh = settled(
            lambda: probes.echo_round(client, [f"tcp:{ip}:80"] * 20),
            lambda r: set(r.counts) == {"staying"} and not r.failures,
        )
    diagnose.check(
        conditions.get("ready") is False,
        "a terminating pod is still listed as ready",
        expected="ready=false, terminating=true",
        observed=str(conditions),
        objects=objects,
    )
    diagnose.check(
        set(fresh.counts) == {"staying"} and not fresh.failures,
        "new connections reached a terminating pod, or went unanswered",
        expected="all 20 new connections answered by staying",
        observed=fresh.summary(),
        objects=objects,
        reproduce=client.repro(fresh.command),
    )
    code, sent, got = drained(res.stdout)
    diagnose.check(
        code == "200" and sent.isdigit() and got == sent,
        "an open connection to a terminating pod was cut",
        expected=f"HTTP 200, and every byte sent (for {DRAIN_HOLD_S:g} s after the kubelet began to stop the pod) "
        "read by the server while the pod drains in its preStop",
        observed=f"HTTP {code}, the server read {got or 'nothing'}, the client sent {sent or '?'} bytes; "
        f"{res.stderr.strip()[:200]}",
        objects=objects,
        reproduce=client.repro(upload),
    )
    diagnose.check(
        still_open,
        "the upload ended before the pod was marked terminating",
        expected="the upload, which goes on until the check stops it, still open when the pod turns terminating",
        observed=f"it had ended: HTTP {code}, the server read {got or 'nothing'}; {res.stderr.strip()[:200]}",
        objects=objects,
    )


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
    first = settled(lambda: probes.echo_round(client, [target]), lambda r: not r.failures)
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
    first = settled(lambda: probes.echo_round(client, targets), lambda r: not r.failures)
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
    settled(lambda: probes.echo_round(client, [target] * burst), lambda r: set(r.counts) == replicas)
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
    got = settled(
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
        return settled(lambda: probes.echo_round(clients[node], [f"tcp:{ip}:80"] * 20), lambda r: right(node, r))

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
    settled(lambda: probes.echo_round(client, targets[:1] + targets[-1:]), lambda r: not r.failures)  # programmed
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
    got = settled(
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
