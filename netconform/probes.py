"""Probes run from a pod, as an admin would by hand: curl, dig, ping, nc, openssl. Results are dataclasses.

Parsing is kept in pure functions (tested without a cluster); `eventually` demands several consecutive
successes within a deadline, never one lucky answer.
"""

from __future__ import annotations

import re
import shlex
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography import x509

from . import podshell
from .at_once import at_once
from .kube import ExecResult, Kube

__all__ = ["ExecResult"]  # probes return it raw where a check reads the output itself

R = TypeVar("R")
K = TypeVar("K")

#: How long a probe may take to hold (3 answers in a row) before the check fails; scaled by --timeout-scale.
#: Proxies and DNS on a healthy cluster converge in a second or two; a fault should turn red quickly.
PROBE_S = 10.0
#: A connection to a path that is not there yet (a Service the proxy has not programmed, a route not installed)
#: hangs until curl's connect timeout: with the full 3 s, a path that came up 0.2 s into an attempt was seen 2.8 s
#: late (measured: the selector-less Services' checks and the LoadBalancer's host routes each waited out one 3 s
#: timeout, then answered at once). Until a probe has first held, its attempts give up connecting after this long
#: (only the connect phase: a connected transfer keeps its full time), for the first third of its deadline; then
#: every attempt has the full timeout, so a path that is merely slow to connect still gets a fair verdict.
QUICK_CONNECT_S = 0.5
#: curl's exit code when it gave up waiting: on its connect timeout, or on its whole --max-time.
CURL_TIMED_OUT = 28


@dataclass(frozen=True)
class ProbePod:
    """A pod that probes run in (as with `kubectl exec`)."""

    kube: Kube
    namespace: str
    name: str
    ip: str
    node: str

    def run(self, cmd: list[str], timeout_s: float = 20) -> ExecResult:
        """`cmd` in the pod, through a shell kept open there (netconform.podshell): what `kubectl exec` gives."""
        return podshell.run(self.kube, self.namespace, self.name, cmd, timeout_s)

    def repro(self, cmd: list[str]) -> str:
        return self.kube.kubectl("exec", "-n", self.namespace, self.name, "--", *cmd)

    def describe(self) -> str:
        return f"pod {self.namespace}/{self.name} ({self.ip} on {self.node})"


def run_each(pod: ProbePod, commands: Sequence[list[str] | str]) -> list[str]:
    """The standard output of each command (an argv, or a shell snippet as is), run one after the other in one
    exec: an exec costs the cluster far more CPU (API server, kubelet, runtime) than reading a few files does."""
    marker = "@@nc-part"
    script = f"; echo {marker}; ".join(c if isinstance(c, str) else shlex.join(c) for c in commands)
    parts = pod.run(["sh", "-c", script]).stdout.split(f"{marker}\n")
    return (parts + [""] * len(commands))[: len(commands)]


@dataclass(frozen=True)
class PodProbe(Generic[R]):
    """One probe command run in a pod, and how to read its result.

    Called, it runs once. `tries(n)` runs n attempts back to back in one exec: the exec (API server, kubelet,
    runtime) costs tens of milliseconds of CPU, the probe itself almost nothing, and "3 answers in a row" means the
    same whether the three run in one exec or in three.
    """

    pod: ProbePod
    command: list[str]
    parse: Callable[[ExecResult, list[str]], R]
    timeout_s: float

    def __call__(self) -> R:
        return self.parse(self.pod.run(self.command, self.timeout_s), self.command)

    def quick(self, connect_s: float) -> PodProbe[R]:
        """This probe with its connect timeout (curl's `--connect-timeout`) at most `connect_s`; itself when it has
        none or a shorter one."""
        if "--connect-timeout" not in self.command[:-1]:
            return self
        at = self.command.index("--connect-timeout") + 1
        if float(self.command[at]) <= connect_s:
            return self
        return replace(self, command=[*self.command[:at], f"{connect_s:g}", *self.command[at + 1 :]])

    def tries(self, n: int) -> list[tuple[int, R]]:
        """Up to n attempts in one exec (they stop at the first that exits non-zero), each with its exit code; one
        attempt is the command itself."""
        if n <= 1:
            res = self.pod.run(self.command, self.timeout_s)
            return [(res.rc, self.parse(res, self.command))]
        res = self.pod.run(["sh", "-c", repeat_script(self.command, n)], self.timeout_s * n)
        return self._read_tries(res, n)

    def read_attempts(self, res: ExecResult, n: int) -> list[R]:
        return [result for _, result in self._read_tries(res, n)]

    def _read_tries(self, res: ExecResult, n: int) -> list[tuple[int, R]]:
        attempts = split_attempts(res.stdout)
        complete = len(attempts) == n or (0 < len(attempts) < n and attempts[-1].rc != 0)  # stopped at a failure
        if res.rc != 0 or not complete:  # the shell itself failed: report it as one failed attempt
            failed = ExecResult(res.rc or 1, res.stdout, res.stderr)
            return [(failed.rc, self.parse(failed, self.command))]
        return [(a.rc, self.parse(a, self.command)) for a in attempts]


def run_together(batch: dict[K, tuple[PodProbe[Any], int]]) -> dict[K, list[Any]]:
    """Every probe of `batch` (key -> (probe, attempts)) at once: one exec per source pod, all pods side by side;
    in each pod the probes run side by side and each probe's attempts back to back. The cost grows with the source
    pods, not with the targets they probe."""
    by_pod: dict[tuple[str, str], dict[K, tuple[PodProbe[Any], int]]] = {}
    for key, (probe, n) in batch.items():
        by_pod.setdefault((probe.pod.namespace, probe.pod.name), {})[key] = (probe, n)
    runs = at_once(_run_in_one_pod, list(by_pod.values()))
    return {key: attempts for run in runs for key, attempts in run.items()}


def _run_in_one_pod(batch: dict[K, tuple[PodProbe[Any], int]]) -> dict[K, list[Any]]:
    keys = list(batch)
    pod = batch[keys[0]][0].pod
    parts = [
        f"( {repeat_script(probe.command, n, tag=str(i))} ) >/tmp/nc.$$.p{i} 2>&1 &"
        for i, (probe, n) in enumerate(batch[k] for k in keys)
    ]
    collect = "; ".join(f"printf '\\n@@nc-probe:{i}\\n'; cat /tmp/nc.$$.p{i}" for i in range(len(keys)))
    script = " ".join(parts) + f" wait; {collect}; rm -f /tmp/nc.$$.p*"
    timeout = max(probe.timeout_s * n for probe, n in batch.values()) + 5
    res = pod.run(["sh", "-c", script], timeout)
    chunks = dict(re.findall(r"\n@@nc-probe:(\d+)\n(.*?)(?=\n@@nc-probe:\d+\n|\Z)", "\n" + res.stdout, re.S))
    out: dict[K, list[Any]] = {}
    for i, key in enumerate(keys):
        probe, n = batch[key]
        chunk = chunks.get(str(i), "")
        out[key] = probe.read_attempts(ExecResult(res.rc if not chunk else 0, chunk, res.stderr), n)
    return out


_ATTEMPT = re.compile(r"\n@@nc:(\d+):o\n(.*?)\n@@nc:e\n(.*?)(?=\n@@nc:\d+:o\n|\n@@nc:end\n)", re.S)


def repeat_script(command: list[str], n: int, tag: str = "") -> str:
    """A shell loop running `command` up to n times, each attempt's exit code, stdout and stderr between markers.
    It stops at the first attempt that exits non-zero: that attempt ends any streak, so the ones after it could
    only start a new one, which the caller's retries do at their own pace.
    (`tag` keeps the temporary files of loops running side by side apart: $$ is the same in every subshell.)"""
    o, e = f"/tmp/nc.$$.{tag}o", f"/tmp/nc.$$.{tag}e"
    return (  # shell builtins but for `cat` of stdout (and of stderr, when there is any): a process is a fork and exec
        f"i=0; while [ $i -lt {n} ]; do i=$((i + 1)); {shlex.join(command)} >{o} 2>{e}; rc=$?; "
        f"printf '\\n@@nc:%s:o\\n' $rc; cat {o}; printf '\\n@@nc:e\\n'; if [ -s {e} ]; then cat {e}; fi; "
        f"[ $rc -eq 0 ] || break; done; printf '\\n@@nc:end\\n'; rm -f {o} {e}"
    )


def split_attempts(stdout: str) -> list[ExecResult]:
    """The attempts of a `repeat_script` run, in order."""
    return [ExecResult(int(rc), out, err) for rc, out, err in _ATTEMPT.findall("\n" + stdout)]


# -- HTTP -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpResult:
    status: int | None
    headers: dict[str, str]
    body: str
    error: str
    command: list[str]

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def summary(self) -> str:
        if self.status is None:
            return f"no HTTP answer ({self.error.strip() or 'connection failed'})"
        loc = f", Location: {self.headers['location']}" if "location" in self.headers else ""
        return f"HTTP {self.status}{loc}, body {self.body.strip()[:80]!r}"


def curl_command(
    url: str, host: str | None = None, timeout_s: float = 3, resolve: str | None = None, insecure: bool = False
) -> list[str]:
    cmd = ["curl", "-sS", "-i", "--max-time", f"{timeout_s:g}", "--connect-timeout", f"{timeout_s:g}"]
    if host:
        cmd += ["-H", f"Host: {host}"]
    if resolve:
        cmd += ["--resolve", resolve]
    if insecure:
        cmd.append("-k")
    return cmd + [url]


def parse_http(result: ExecResult, command: list[str]) -> HttpResult:
    if result.rc != 0:
        return HttpResult(None, {}, "", result.stderr or f"curl exited {result.rc}", command)
    raw = result.stdout.replace("\r\n", "\n")
    head, _, body = raw.partition("\n\n")
    lines = head.splitlines()
    m = re.match(r"HTTP/[\d.]+ (\d{3})", lines[0] if lines else "")
    if not m:
        return HttpResult(None, {}, raw, "unparseable response", command)
    headers = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            headers[k.strip().lower()] = v.strip()
    return HttpResult(int(m.group(1)), headers, body, "", command)


def http_probe(
    pod: ProbePod,
    url: str,
    host: str | None = None,
    timeout_s: float = 3,
    resolve: str | None = None,
    insecure: bool = False,
) -> PodProbe[HttpResult]:
    return PodProbe(pod, curl_command(url, host, timeout_s, resolve, insecure), parse_http, timeout_s + 10)


def http(
    pod: ProbePod,
    url: str,
    host: str | None = None,
    timeout_s: float = 3,
    resolve: str | None = None,
    insecure: bool = False,
) -> HttpResult:
    return http_probe(pod, url, host, timeout_s, resolve, insecure)()


def runner_http(url: str, timeout_s: float = 3, host: str | None = None, insecure: bool = False) -> HttpResult:
    """HTTP from the machine running the suite itself (no proxy from the environment). `insecure`: an HTTPS
    certificate is not verified (the check is about the route, the certificate has checks of its own)."""
    import requests
    import urllib3

    cmd = ["curl", "-sS", "-i", *(["-k"] if insecure else []), *(["-H", f"Host: {host}"] if host else []), url]
    try:
        with requests.Session() as session, warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            session.trust_env = False
            headers = {"Host": host} if host else {}
            r = session.get(url, timeout=timeout_s, allow_redirects=False, headers=headers, verify=not insecure)
        return HttpResult(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.text, "", cmd)
    except requests.RequestException as e:
        return HttpResult(None, {}, "", f"{type(e).__name__}: {e}", cmd)


def runner_source_ip(dest: str) -> str:
    """The address this machine sends from towards `dest` (what a server will see without NAT)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((dest, 9))  # UDP connect sends nothing; it only picks the route
        return str(s.getsockname()[0])


@dataclass(frozen=True)
class Spread:
    """Answers of `count` separate connections: which backend answered how often."""

    counts: Counter[str]
    failures: int
    count: int
    command: list[str]
    errors: tuple[str, ...] = ()


#: A spread request's time limit: room for one lost SYN, which the client's kernel sends again after 1 s (its
#: initial retransmission timeout). With 1 s, one SYN lost on a loaded host failed a check that asserts no request
#: fails (1 of 90 in a CI run, "Connection timed out after 1001 milliseconds", after the burst before it had
#: reached every replica cleanly). A path that drops connections (a black-holed replica) still fails every time.
SPREAD_TIMEOUT_S = 2.0


def spread_command(
    url: str, count: int, timeout_s: float = SPREAD_TIMEOUT_S, max_failures: int = 4, batch: int = 10
) -> list[str]:
    """`count` requests, each on a new connection (Connection: close), so the proxy picks a backend anew each time.

    Batches of `batch` URLs per curl process keep it fast; after `max_failures` failed requests it stops, so a
    broken path fails fast (in about `max_failures` * `timeout_s`) instead of timing out request by request.
    """
    batches, rest = divmod(count, batch)
    sizes = [batch] * batches + ([rest] if rest else [])
    quoted = shlex.quote(url)
    parts = ["f=0"]
    for size in sizes:
        parts.append(
            f"out=$(curl -s --max-time {timeout_s:g} -H 'Connection: close' "
            f"-w '|%{{http_code}}|%{{errormsg}}\\n' {' '.join([quoted] * size)}); printf '%s\\n' \"$out\"; "
            f"f=$((f + $(printf '%s\\n' \"$out\" | grep -c '|000|'))); [ $f -ge {max_failures} ] && exit 0"
        )
    return ["sh", "-c", "; ".join(parts) + "; true"]


def parse_spread(stdout: str, count: int, command: list[str]) -> Spread:
    counts: Counter[str] = Counter()
    errors = []
    for line in stdout.splitlines():
        if "|" not in line:
            continue
        body, code, err = line.rsplit("|", 2)
        if code == "200":
            counts[body.strip()] += 1
        else:
            errors.append(err.strip() or f"HTTP {code}")
    return Spread(counts, len(errors), count, command, tuple(errors))


def spread(pod: ProbePod, url: str, count: int) -> Spread:
    cmd = spread_command(url, count)
    res = pod.run(cmd, timeout_s=count * 2.5 + 10)
    return parse_spread(res.stdout, count, cmd)


def requests_to_reach_all(replicas: int, p_fail: float) -> int:
    """Smallest request count for which a fair random spread misses some replica with probability < `p_fail`."""
    n = 1
    while replicas * (1 - 1 / replicas) ** n >= p_fail:
        n += 1
    return n


def requests_for_spread(replicas: int, floor_fraction: float = 1 / 3, p_fail: float = 1e-6) -> int:
    """Smallest request count for which a fair random spread leaves some replica below `floor_fraction` of
    its fair share (and so also misses one) with probability below `p_fail` (binomial tail, union bound)."""
    from math import comb

    p = 1 / replicas
    n = replicas
    while True:
        floor = floor_fraction * n / replicas
        tail = sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(0, int(-(-floor // 1))))
        if replicas * tail < p_fail:
            return n
        n += 1


# -- DNS ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    name: str
    rdtype: str
    value: str  # address for A/AAAA, target name for CNAME/PTR, "priority weight port target" for SRV


@dataclass(frozen=True)
class DnsAnswer:
    status: str  # NOERROR, NXDOMAIN, ... or "TIMEOUT"
    records: tuple[Record, ...]
    command: list[str]
    raw: str = ""

    def values(self, rdtype: str = "A") -> set[str]:
        return {r.value for r in self.records if r.rdtype == rdtype}

    def summary(self) -> str:
        if not self.records:
            return f"{self.status}, no records"
        return f"{self.status}: " + ", ".join(f"{r.name} {r.rdtype} {r.value}" for r in self.records)


def dig_command(
    name: str, rdtype: str = "A", tcp: bool = False, search: bool = True, server: str | None = None
) -> list[str]:
    cmd = ["dig", "+time=2", "+tries=1", "+nocookie"]
    cmd.append("+search" if search else "+nosearch")
    cmd.append("+tcp" if tcp else "+notcp")
    if server:
        cmd.append(f"@{server}")
    return cmd + [name, rdtype]


def parse_dig(stdout: str, command: list[str]) -> DnsAnswer:
    m = re.search(r"status: ([A-Z]+)", stdout)
    if not m:
        status = "TIMEOUT" if "timed out" in stdout or "no servers could be reached" in stdout else "ERROR"
        return DnsAnswer(status, (), command, stdout)
    records = []
    section = None
    for line in stdout.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            section = "answer"
            continue
        if line.startswith(";;") or not line.strip():
            if section == "answer" and not line.strip():
                section = None
            continue
        if section == "answer":
            fields = line.split(None, 4)
            if len(fields) < 5:
                continue
            owner, _ttl, rdclass, rdtype, text = fields
            rd = dns.rdata.from_text(dns.rdataclass.from_text(rdclass), dns.rdatatype.from_text(rdtype), text)
            if rdtype == "SRV":
                value = rd.to_text()
            else:
                value = str(getattr(rd, "address", None) or getattr(rd, "target", None) or rd.to_text())
            records.append(Record(owner, rdtype, value))
    return DnsAnswer(m.group(1), tuple(records), command, stdout)


def lookup_probe(
    pod: ProbePod, name: str, rdtype: str = "A", tcp: bool = False, search: bool = True, server: str | None = None
) -> PodProbe[DnsAnswer]:
    return PodProbe(
        pod, dig_command(name, rdtype, tcp, search, server), lambda r, c: parse_dig(r.stdout + r.stderr, c), 15
    )


def lookup(
    pod: ProbePod, name: str, rdtype: str = "A", tcp: bool = False, search: bool = True, server: str | None = None
) -> DnsAnswer:
    return lookup_probe(pod, name, rdtype, tcp, search, server)()


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], dict[str, str]]:
    """(nameservers, search list, options) of a resolv.conf."""
    servers, search, options = [], [], {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "nameserver":
            servers += parts[1:2]
        elif parts[0] == "search":
            search = parts[1:]
        elif parts[0] == "options":
            for o in parts[1:]:
                k, _, v = o.partition(":")
                options[k] = v
    return servers, search, options


# -- ICMP, TCP, UDP -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    output: str
    command: list[str]

    @property
    def ok(self) -> bool:
        return self.received > 0 and self.received == self.sent


def ping_command(target: str, count: int = 3, size: int | None = None, dont_fragment: bool = False) -> list[str]:
    cmd = ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2"]
    if size is not None:
        cmd += ["-s", str(size)]
    if dont_fragment:
        cmd += ["-M", "do"]
    return cmd + [target]


def parse_ping(output: str, command: list[str]) -> PingResult:
    m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", output)
    if not m:
        return PingResult(0, 0, output, command)
    return PingResult(int(m.group(1)), int(m.group(2)), output, command)


def ping_probe(
    pod: ProbePod, target: str, count: int = 3, size: int | None = None, dont_fragment: bool = False
) -> PodProbe[PingResult]:
    cmd = ping_command(target, count, size, dont_fragment)
    return PodProbe(pod, cmd, lambda r, c: parse_ping(r.stdout + r.stderr, c), count * 2 + 10)


def ping(
    pod: ProbePod, target: str, count: int = 3, size: int | None = None, dont_fragment: bool = False
) -> PingResult:
    return ping_probe(pod, target, count, size, dont_fragment)()


@dataclass(frozen=True)
class TextResult:
    ok: bool
    text: str
    command: list[str]

    def summary(self) -> str:
        return repr(self.text.strip()[:120]) if self.ok else f"failed: {self.text.strip()[:200]}"


def _text_of_http(res: ExecResult, cmd: list[str]) -> TextResult:
    r = parse_http(res, cmd)
    return TextResult(r.ok, r.body if r.ok else r.summary(), r.command)


def tcp_probe(pod: ProbePod, ip: str, port: int, path: str = "/hostname", timeout_s: float = 3) -> PodProbe[TextResult]:
    return PodProbe(
        pod, curl_command(f"http://{_hostport(ip, port)}{path}", timeout_s=timeout_s), _text_of_http, timeout_s + 10
    )


def tcp_request(pod: ProbePod, ip: str, port: int, path: str = "/hostname", timeout_s: float = 3) -> TextResult:
    return tcp_probe(pod, ip, port, path, timeout_s)()


def _text_of_udp(res: ExecResult, cmd: list[str]) -> TextResult:
    text = res.stdout.strip()
    return TextResult(bool(text), text or res.stderr or "no UDP answer", cmd)


def udp_probe(
    pod: ProbePod, ip: str, port: int, message: str = "hostname", timeout_s: float = 2
) -> PodProbe[TextResult]:
    # nc-echo answers a UDP datagram "hostname" with its hostname and "clientip" with the client address.
    cmd = ["sh", "-c", f"echo {shlex.quote(message)} | nc -u -W1 -w{int(timeout_s)} {ip} {port}"]
    return PodProbe(pod, cmd, _text_of_udp, timeout_s + 10)


def udp_request(pod: ProbePod, ip: str, port: int, message: str = "hostname", timeout_s: float = 2) -> TextResult:
    return udp_probe(pod, ip, port, message, timeout_s)()


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# -- TLS ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsResult:
    chain: tuple[x509.Certificate, ...]
    error: str
    command: list[str]

    @property
    def handshake_ok(self) -> bool:
        return bool(self.chain)


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def parse_s_client(output: str, command: list[str]) -> TlsResult:
    certs = tuple(x509.load_pem_x509_certificate(m.encode()) for m in _PEM.findall(output))
    return TlsResult(certs, "" if certs else output.strip()[-300:], command)


def tls_probe(pod: ProbePod, ip: str, port: int, sni: str) -> PodProbe[TlsResult]:
    cmd = [
        "sh",
        "-c",
        f"openssl s_client -connect {_hostport(ip, port)} -servername {shlex.quote(sni)} -showcerts </dev/null 2>&1",
    ]
    return PodProbe(pod, cmd, lambda r, c: parse_s_client(r.stdout + r.stderr, c), 15)


def tls_handshake(pod: ProbePod, ip: str, port: int, sni: str) -> TlsResult:
    return tls_probe(pod, ip, port, sni)()


# -- polling --------------------------------------------------------------------------------------------------
class NotConsistent(Exception, Generic[R]):
    """A probe never met its expectation `successes` times in a row before the deadline."""

    def __init__(self, last: R, attempts: int, best_streak: int, deadline_s: float) -> None:
        super().__init__(f"not consistently true within {deadline_s:.0f}s")
        self.last = last
        self.attempts = attempts
        self.best_streak = best_streak
        self.deadline_s = deadline_s


def eventually(
    attempt: Callable[[], R],
    ok: Callable[[R], bool],
    deadline_s: float,
    successes: int = 3,
    interval_s: float = 0.2,
    first: list[R] | None = None,
) -> R:
    """Repeat `attempt` until `ok` holds `successes` times in a row; raise NotConsistent with the last result.

    A `PodProbe` runs its first `successes` attempts in one exec; once any attempt has failed, the rest run one by
    one, as they always did, so a broken path is retried at the same pace. In the first third of the deadline a
    `PodProbe`'s attempts connect with QUICK_CONNECT_S until one holds (a path coming up is seen when it does, not
    when a hung attempt times out); from then on, and after that first third, attempts run as given, the rest of
    the streak in one exec. A shortened attempt counts as the probe's own unless curl gave up on it
    (CURL_TIMED_OUT): any other outcome (an answer, a refusal) is what the probe as given gets too, while one that
    gave up connecting might have connected later, so it never adds to a streak (nor, for a check that expects no
    connection, does it count as one refused). `first`: attempts already made (by `run_together`), counted before
    any new one."""
    start = time.monotonic()
    end, quick_until = start + deadline_s, start + deadline_s / 3
    streak = best = attempts = 0
    probe = attempt if isinstance(attempt, PodProbe) else None
    batch = successes if probe is not None and successes > 1 else 0
    quick = True
    pending: list[tuple[int | None, R]] = [(None, r) for r in first or []]
    tried: Sequence[tuple[int | None, R]]  # (exit code when known, result) of the attempts just made
    while True:
        shortened = False
        if pending:
            tried, pending, batch = pending, [], 0
        elif probe is None:
            tried = [(None, attempt())]
        else:
            now = probe
            if quick and time.monotonic() < quick_until:
                now = probe.quick(QUICK_CONNECT_S)
                shortened = now is not probe
            tried = now.tries(batch or 1)
            batch = 0
        held = shortened and any(ok(r) for _, r in tried)
        for rc, result in tried:
            if shortened and rc == CURL_TIMED_OUT and ok(result):
                continue  # it gave up on the shortened connect: that only says when to start
            attempts += 1
            streak = streak + 1 if ok(result) else 0
            best = max(best, streak)
            if streak >= successes:
                return result
        if held:
            # From now on every attempt is the probe as given; the rest of the streak in one exec.
            quick, batch = False, successes - streak
            continue
        if time.monotonic() >= end:
            raise NotConsistent(result, attempts, best, deadline_s)
        if streak == 0:
            time.sleep(interval_s)


def settled(attempt: Callable[[], R], ok: Callable[[R], bool], deadline_s: float = PROBE_S) -> R:
    """The first result that is `ok`, polled up to the deadline (a Service just made may not be programmed yet), or
    the last one seen: the check then says what it saw."""
    try:
        return eventually(attempt, ok, deadline_s, successes=1)
    except NotConsistent as e:
        last: R = e.last
        return last


# -- nc-echo probe rounds -----------------------------------------------------------------------------------------
def echo_probe_command(targets: list[str], timeout: str = "1s") -> list[str]:
    """`nc-echo probe`: every target ("tcp:IP:PORT" asks GET /hostname, "udp:IP:PORT" sends "hostname") at once,
    each on a new connection or socket (so a proxy picks a backend anew for each), one answer line per target."""
    return ["nc-echo", "probe", "--timeout", timeout, *targets]


@dataclass(frozen=True)
class EchoRound:
    """The answers of one `nc-echo probe` run, in the order of its targets: (target, answered, hostname or error)."""

    answers: tuple[tuple[str, bool, str], ...]
    command: list[str]

    @property
    def counts(self) -> Counter[str]:
        return Counter(who for _, ok, who in self.answers if ok)

    @property
    def failures(self) -> list[str]:
        return [f"{target}: {why}" for target, ok, why in self.answers if not ok]

    def summary(self) -> str:
        answered = ", ".join(f"{who} x{n}" for who, n in sorted(self.counts.items())) or "none"
        failed = f"; {len(self.failures)} unanswered ({self.failures[0]})" if self.failures else ""
        return f"answers: {answered}{failed}"


def parse_echo_round(res: ExecResult, targets: list[str], command: list[str]) -> EchoRound:
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    answers = []
    for i, target in enumerate(targets):
        if i >= len(lines):
            answers.append((target, False, f"no answer line (exit {res.rc}: {res.stderr.strip()[:200]})"))
            continue
        _, _, rest = lines[i].partition(" ")
        verdict, _, detail = rest.partition(" ")
        answers.append((target, verdict == "ok", detail))
    return EchoRound(tuple(answers), command)


def echo_round(pod: ProbePod, targets: list[str], timeout: str = "1s") -> EchoRound:
    command = echo_probe_command(targets, timeout)
    return parse_echo_round(pod.run(command, timeout_s=30), targets, command)


# -- bulk transfers -----------------------------------------------------------------------------------------------
MIB = 1 << 20
#: A bulk transfer's connect timeout: an HTTP probe's whole timeout. Only the transfer needs the long deadline; a
#: connection that hangs (one sent to a backend deleted moments before, say, by rules or a conntrack entry not yet
#: cleared) then costs one attempt, not the check's whole deadline (seen once: one 10 s connect, no time to retry).
BULK_CONNECT_S = 3.0


@dataclass(frozen=True)
class Bulk:
    """One upload to nc-echo's /upload and one download from its /bytes, of `size` bytes each."""

    size: int
    up_code: str
    up_sent: int  # what curl sent
    up_counted: int  # what the server says it read
    down_code: str
    down_received: int
    command: list[str]
    errors: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.up_code == "200"
            and self.up_counted == self.size
            and self.down_code == "200"
            and self.down_received == self.size
        )

    def summary(self) -> str:
        return (
            f"up: HTTP {self.up_code}, {self.up_sent} of {self.size} bytes sent, {self.up_counted} read by the server; "
            f"down: HTTP {self.down_code}, {self.down_received} of {self.size} bytes received"
            + (f"; {self.errors}" if self.errors else "")
        )


def bulk_command(base_url: str, size: int = MIB, timeout_s: float = 10, host: str | None = None) -> list[str]:
    """Upload then download `size` bytes through one data path (new connections), each with its own deadline."""
    hdr = f"-H {shlex.quote('Host: ' + host)} " if host else ""
    curl = f"curl -sS --max-time {timeout_s:g} --connect-timeout {BULK_CONNECT_S:g} {hdr}"
    up = (
        f"head -c {size} /dev/zero | {curl}--data-binary @- -o /tmp/nc.$$.up "
        f"-w 'up %{{http_code}} %{{size_upload}}\n' {shlex.quote(base_url + '/upload')}; "
        "printf 'counted %s\n' \"$(cat /tmp/nc.$$.up 2>/dev/null)\"; rm -f /tmp/nc.$$.up"
    )
    down = (
        f"{curl}-o /dev/null -w 'down %{{http_code}} %{{size_download}}\n' {shlex.quote(f'{base_url}/bytes?n={size}')}"
    )
    return ["sh", "-c", f"{up}; {down}; true"]


def parse_bulk(res: ExecResult, size: int, command: list[str]) -> Bulk:
    fields: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        key, _, rest = line.strip().partition(" ")
        if key in ("up", "down", "counted"):
            fields[key] = rest.split()

    def number(key: str, i: int) -> int:
        try:
            return int(float(fields[key][i]))
        except (KeyError, IndexError, ValueError):
            return 0

    return Bulk(
        size,
        (fields.get("up") or ["000"])[0],
        number("up", 1),
        number("counted", 0),
        (fields.get("down") or ["000"])[0],
        number("down", 1),
        command,
        " ".join(res.stderr.split())[:300],
    )


def bulk_probe(pod: ProbePod, base_url: str, size: int = MIB, host: str | None = None) -> PodProbe[Bulk]:
    return PodProbe(pod, bulk_command(base_url, size, host=host), lambda r, c: parse_bulk(r, size, c), 30)


def runner_bulk(base_url: str, size: int = MIB, timeout_s: float = 10) -> Bulk:
    """The same two transfers as `bulk_command`, from the machine running the suite (no proxy from the
    environment); `command` is the shell a person runs there to repeat them."""
    import requests

    up_code, up_sent, up_counted, down_code, received = "000", 0, 0, "000", 0
    errors = []
    with requests.Session() as session:
        session.trust_env = False
        try:
            r = session.post(f"{base_url}/upload", data=bytes(size), timeout=(BULK_CONNECT_S, timeout_s))
            up_code, up_sent = str(r.status_code), size
            up_counted = int(r.text.strip()) if r.text.strip().isdigit() else 0
        except requests.RequestException as e:
            errors.append(f"up: {type(e).__name__}: {e}")
        try:
            with session.get(f"{base_url}/bytes?n={size}", timeout=(BULK_CONNECT_S, timeout_s), stream=True) as r:
                down_code = str(r.status_code)
                for chunk in r.iter_content(1 << 16):
                    received += len(chunk)
        except requests.RequestException as e:
            errors.append(f"down: {type(e).__name__}: {e}")
    return Bulk(
        size,
        up_code,
        up_sent,
        up_counted,
        down_code,
        received,
        bulk_command(base_url, size, timeout_s),
        "; ".join(errors)[:300],
    )
