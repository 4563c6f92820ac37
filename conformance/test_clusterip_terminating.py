"""ClusterIP Services, a pod's graceful stop: open connections to a terminating pod finish, new ones go elsewhere.

A part of the ClusterIP area in a module of its own (areas.py, `parts`): most of its check's time is the cluster
stopping a pod (until the kubelet has begun, and 3 s more), and beside the area's other checks, on a worker of its
own, that wait no longer lengthens the run's longest module. Its objects are its own: Service "drain" and pods
"leaving" and "staying", in the area's namespace.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.preconditions import Precondition, service_proxy
from fixtures.prestart import Stage
from fixtures.workloads import PodRef, ServiceRef, Workloads
from netconform import probes
from netconform.errors import WaitTimeout
from netconform.kube import wait
from netconform.probes import ProbePod

pytestmark = pytest.mark.clusterip

#: The run's probe pod is this module's client: its check does not depend on the client's namespace.
SHARED_CLIENT = True


def prestart(stage: Stage) -> None:
    """The two pods and their Service, requested at the start of the run."""
    stage.workloads.apply(drain_docs(stage.workloads, "spare"))


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


def drain_docs(ws: Workloads, staying_set: str) -> list[dict[str, Any]]:
    """Service "drain" over pod "leaving", and pod "staying" labelled `staying_set` (in the Service when "drain")."""
    return ws.render("clusterip", "drain", STAYING_SET=staying_set)


@pytest.fixture(scope="module")
def drain_service(workloads: Workloads) -> ServiceRef:
    """Service "drain" as the API server holds it."""
    return ServiceRef.of(next(d for d in workloads.apply(drain_docs(workloads, "spare")) if d["kind"] == "Service"))


@pytest.fixture(scope="module")
def drain(workloads: Workloads, drain_service: ServiceRef) -> tuple[PodRef, PodRef]:
    """(leaving, staying): Service "drain" has only "leaving" as its endpoint; "staying" runs outside it."""
    leaving, staying = workloads.wait_pod("leaving"), workloads.wait_pod("staying")
    workloads.wait_endpoints("drain", {leaving.ip})
    return leaving, staying


@pytest.fixture(scope="module")
def proxy(
    cluster: ClusterHandle, client: ProbePod, drain_service: ServiceRef, drain: tuple[PodRef, PodRef]
) -> Precondition:
    """The Service proxy answers on the ClusterIP at all (probed once): if not, the check fails at once with that
    cause instead of measuring a Service that never answers."""
    return service_proxy(cluster, client, drain_service)


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
    proxy: Precondition,
    diagnose: Diagnose,
    workloads: Workloads,
    client: ProbePod,
    drain_service: ServiceRef,
    drain: tuple[PodRef, PodRef],
) -> None:
    """An upload is open through the ClusterIP to pod "leaving", sent a chunk at a time; a second pod joins the
    Service and "leaving" is deleted (12 s preStop). Its EndpointSlice entry turns terminating while the upload goes
    on, past the kubelet's start of the pod's stop, and then completes whole; 20 new connections all reach the
    other pod."""
    proxy.require()
    leaving, staying = drain
    ip = drain_service.cluster_ip
    objects = [
        client.describe(),
        f"service {workloads.namespace}/drain ({ip})",
        f"pods leaving ({leaving.ip}), staying ({staying.ip})",
    ]
    probes.settled(lambda: probes.echo_round(client, [f"tcp:{ip}:80"]), lambda r: set(r.counts) == {"leaving"})
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
        workloads.apply(drain_docs(workloads, "drain"))
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
        fresh = probes.settled(
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
