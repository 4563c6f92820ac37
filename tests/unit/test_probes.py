"""Parsing of what the probes print (curl, dig, ping, openssl, resolv.conf) and the polling rule."""

import re
from collections import Counter
from math import comb

import pytest

from netconform import probes
from netconform.kube import ExecResult

DIG = """
; <<>> DiG 9.18.41 <<>> +search web A
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; QUESTION SECTION:
;external.ns.svc.cluster.local. IN A

;; ANSWER SECTION:
external.ns.svc.cluster.local. 5 IN CNAME kubernetes.default.svc.cluster.local.
kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1

;; Query time: 0 msec
"""


def test_dig_answer_is_parsed_with_dnspython():
    a = probes.parse_dig(DIG, ["dig"])
    assert a.status == "NOERROR"
    assert a.values("CNAME") == {"kubernetes.default.svc.cluster.local."}
    assert a.values("A") == {"10.96.0.1"}


def test_dig_nxdomain_and_timeout():
    nx = probes.parse_dig(";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n", [])
    assert nx.status == "NXDOMAIN" and not nx.records
    to = probes.parse_dig(";; communications error to 10.96.0.10#53: timed out\n;; no servers could be reached\n", [])
    assert to.status == "TIMEOUT"
    assert "no records" in to.summary()


def test_http_response_with_redirect():
    out = "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://h/p\r\nContent-Length: 0\r\n\r\n"
    r = probes.parse_http(ExecResult(0, out, ""), ["curl"])
    assert r.status == 308 and r.headers["location"] == "https://h/p" and not r.ok
    assert "Location: https://h/p" in r.summary()


def test_http_failure_keeps_curls_error():
    r = probes.parse_http(ExecResult(28, "", "curl: (28) Connection timed out after 3001 ms"), ["curl"])
    assert r.status is None and "timed out" in r.summary()


def test_spread_counts_answers_and_failures():
    out = "web-a|200|\nweb-b|200|\n|000|Connection timed out after 1001 milliseconds\nweb-a|200|\nx|503|\n"
    s = probes.parse_spread(out, 5, [])
    assert s.counts == Counter({"web-a": 2, "web-b": 1})
    assert s.failures == 2
    assert s.errors == ("Connection timed out after 1001 milliseconds", "HTTP 503")


def test_spread_command_batches_new_connections():
    cmd = probes.spread_command("http://10.96.0.5/hostname", 25)
    script = cmd[2]
    assert script.count("curl ") == 3 and script.count("http://10.96.0.5/hostname") == 25
    assert "Connection: close" in script
    # Each request outlives one lost SYN: the kernel sends it again after 1 s (TCP's initial retransmission timeout).
    assert script.count(f"--max-time {probes.SPREAD_TIMEOUT_S:g} ") == 3 and probes.SPREAD_TIMEOUT_S > 1


def test_request_count_bounds_the_chance_of_a_false_alarm():
    n = probes.requests_for_spread(3)
    p = 1 / 3
    floor = n / 9
    tail = sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(0, int(-(-floor // 1))))
    assert 3 * tail < 1e-6
    assert 3 * (2 / 3) ** n < 1e-6  # a replica missed entirely is rarer still
    assert probes.requests_for_spread(3) < probes.requests_for_spread(4)


def test_burst_that_reaches_every_replica():
    n = probes.requests_to_reach_all(3, p_fail=1e-3)
    assert 3 * (2 / 3) ** n < 1e-3 <= 3 * (2 / 3) ** (n - 1)


def test_ping_summary():
    out = "3 packets transmitted, 3 received, 0% packet loss, time 402ms"
    assert probes.parse_ping(out, []).ok
    lost = probes.parse_ping("3 packets transmitted, 0 received, 100% packet loss", [])
    assert not lost.ok and lost.sent == 3
    assert not probes.parse_ping("ping: sendmsg: Message too long", []).ok


def test_resolv_conf():
    servers, search, options = probes.parse_resolv_conf(
        "search ns.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    )
    assert servers == ["10.96.0.10"] and search[0] == "ns.svc.cluster.local" and options == {"ndots": "5"}


def test_eventually_needs_consecutive_successes():
    answers = iter([True, False, True, True, True])
    assert probes.eventually(lambda: next(answers), bool, deadline_s=5, successes=3, interval_s=0)


def test_eventually_reports_the_last_observation():
    with pytest.raises(probes.NotConsistent) as e:
        probes.eventually(lambda: "refused", lambda r: r == "ok", deadline_s=0.05, interval_s=0.01)
    assert e.value.last == "refused" and e.value.best_streak == 0


def test_repeated_attempts_in_one_shell_come_back_apart():
    """What `PodProbe.tries` runs in a pod, run here by sh: each attempt's exit code, stdout and stderr."""
    import subprocess

    cmd = ["sh", "-c", "printf 'line one\\n\\nbody'; echo warn >&2; exit 3"]
    out = subprocess.run(["sh", "-c", probes.repeat_script(cmd, 3)], capture_output=True, text=True, timeout=10)
    got = probes.split_attempts(out.stdout)
    assert [(a.rc, a.stdout, a.stderr) for a in got] == [(3, "line one\n\nbody", "warn\n")]  # stops at a failure
    ok = ["sh", "-c", "printf 'line one\\n\\nbody'; echo warn >&2"]
    out = subprocess.run(["sh", "-c", probes.repeat_script(ok, 3)], capture_output=True, text=True, timeout=10)
    assert [(a.rc, a.stdout, a.stderr) for a in probes.split_attempts(out.stdout)] == [
        (0, "line one\n\nbody", "warn\n")
    ] * 3


def test_probes_run_together_in_one_shell_come_back_by_key():
    """What `run_together` runs in a pod, run here by sh: several probes side by side, each with its attempts."""
    import subprocess

    from netconform.kube import ExecResult

    class LocalPod:
        namespace, name = "local", "sh"

        def run(self, cmd, timeout_s=20):
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            return ExecResult(p.returncode, p.stdout, p.stderr)

    pod = LocalPod()
    text = lambda r, c: (r.rc, r.stdout)  # noqa: E731
    batch = {
        "a": (probes.PodProbe(pod, ["sh", "-c", "sleep 0.2; echo a"], text, 5), 3),
        "b": (probes.PodProbe(pod, ["sh", "-c", "echo b; exit 2"], text, 5), 1),
    }
    got = probes.run_together(batch)
    assert got == {"a": [(0, "a\n")] * 3, "b": [(2, "b\n")]}  # b: one attempt, it failed
    assert probes.eventually(batch["a"][0], lambda r: r[0] == 0, 5, first=got["a"]) == (0, "a\n")


def test_spread_checks_keep_their_request_counts():
    """Speed never buys a weaker check: the ClusterIP spread still sends 90 requests over 3 replicas (false alarm
    below 1e-6), and the convergence burst still asks until every replica answered with 1e-3 certainty."""
    assert probes.requests_for_spread(3) == 90
    assert probes.requests_to_reach_all(3, p_fail=1e-3) == 20


def test_a_bulk_transfer_is_whole_only_when_both_directions_carried_every_byte():
    whole = ExecResult(0, "up 200 1048576\ncounted 1048576\ndown 200 1048576\n", "")
    assert probes.parse_bulk(whole, probes.MIB, ["x"]).ok
    cut = ExecResult(0, "up 200 1048576\ncounted 1048576\ndown 200 65536\n", "curl: (28) Operation timed out")
    got = probes.parse_bulk(cut, probes.MIB, ["x"])
    assert not got.ok and got.down_received == 65536
    assert "65536 of 1048576 bytes received" in got.summary() and "timed out" in got.summary()
    nothing = probes.parse_bulk(ExecResult(1, "", "sh: curl: not found"), probes.MIB, ["x"])
    assert not nothing.ok and nothing.up_code == "000" and nothing.up_counted == 0


def test_a_bulk_transfer_gives_up_connecting_long_before_it_gives_up_transferring():
    script = probes.bulk_command("http://10.96.0.1:80")[-1]
    curls = script.split("curl ")[1:]
    assert len(curls) == 2, "one upload, one download"
    for curl in curls:
        assert f"--connect-timeout {probes.BULK_CONNECT_S:g} " in curl
        assert "--max-time 10 " in curl, "a connected transfer keeps its full time"
    assert probes.BULK_CONNECT_S < 10 / 2, "a hung connection leaves time in the deadline to retry"


def test_quick_caps_only_curls_connect_timeout():
    probe = probes.http_probe(None, "http://10.96.0.1/", timeout_s=3)  # type: ignore[arg-type]
    quick = probe.quick(0.5)
    assert quick.command[quick.command.index("--connect-timeout") + 1] == "0.5"
    assert quick.command[quick.command.index("--max-time") + 1] == "3", "a connected transfer keeps its full time"
    assert probe.command[probe.command.index("--connect-timeout") + 1] == "3", "the probe itself is unchanged"
    short = probes.http_probe(None, "http://x/", timeout_s=0.2)  # type: ignore[arg-type]
    assert short.quick(0.5) is short
    dig = probes.PodProbe(None, ["dig", "x"], lambda r, c: r, 5)  # type: ignore[arg-type]
    assert dig.quick(0.5) is dig


class ScriptedPod:
    """A pod whose curl fails for its first `down_for` attempts (rc 28, as a connect timeout, or `down_rc`) and
    answers 200 after; it records each attempt's connect timeout, also of attempts batched in one shell
    (`PodProbe.tries`), and the execs it was asked for."""

    namespace, name = "ns", "client"

    def __init__(self, down_for: int, down_rc: int = 28) -> None:
        self.down_for, self.down_rc, self.timeouts, self.execs = down_for, down_rc, [], 0

    def attempt(self, cmd: str) -> tuple[int, str, str]:
        self.timeouts.append(re.search(r"--connect-timeout (\S+)", cmd).group(1))
        if len(self.timeouts) <= self.down_for:
            return self.down_rc, "", f"curl: ({self.down_rc}) Failed to connect"
        return 0, "HTTP/1.1 200 OK\r\n\r\nhello", ""

    def run(self, cmd, timeout_s=20):
        from netconform.kube import ExecResult

        self.execs += 1
        if cmd[:2] != ["sh", "-c"]:
            return ExecResult(*self.attempt(" ".join(cmd)))
        out = ""
        for _ in range(int(re.search(r"-lt (\d+)", cmd[2]).group(1))):  # as repeat_script: stop at a failure
            rc, o, e = self.attempt(cmd[2])
            out += f"\n@@nc:{rc}:o\n{o}\n@@nc:e\n{e}"
            if rc:
                break
        return ExecResult(0, out + "\n@@nc:end\n", "")


def curl_probe(pod: ScriptedPod) -> probes.PodProbe[probes.HttpResult]:
    return probes.PodProbe(pod, probes.curl_command("http://10.96.0.1/"), probes.parse_http, 5)  # type: ignore[arg-type]


def test_a_path_that_is_up_holds_with_one_exec_of_three_shortened_attempts():
    pod = ScriptedPod(down_for=0)
    got = probes.eventually(curl_probe(pod), lambda r: r.status == 200, deadline_s=5, interval_s=0)
    assert got.status == 200
    assert pod.timeouts == ["0.5", "0.5", "0.5"] and pod.execs == 1, "an answer is an answer, however short the wait"


def test_a_path_coming_up_is_probed_with_a_short_connect_timeout_until_it_first_answers():
    pod = ScriptedPod(down_for=2)
    got = probes.eventually(curl_probe(pod), lambda r: r.status == 200, deadline_s=5, interval_s=0)
    assert got.status == 200
    assert pod.timeouts == ["0.5", "0.5", "0.5", "3", "3"], "the first answer counts; the rest with the full timeout"
    assert pod.execs == 4, "after the first answer, the rest of the 3 in a row in one exec"
    pod = ScriptedPod(down_for=2)
    probe = curl_probe(pod)
    probes.eventually(lambda: probe(), lambda r: r.status == 200, deadline_s=5, interval_s=0)
    assert pod.timeouts == ["3"] * 5, "only a PodProbe is shortened, never an attempt the caller wrapped"


def test_after_the_first_third_of_the_deadline_every_attempt_has_the_full_timeout():
    pod = ScriptedPod(down_for=10**6)
    with pytest.raises(probes.NotConsistent) as e:
        probes.eventually(curl_probe(pod), lambda r: r.status == 200, deadline_s=0.3, interval_s=0.02)
    assert pod.timeouts[0] == "0.5" and pod.timeouts[-1] == "3", pod.timeouts
    assert pod.timeouts == sorted(pod.timeouts, key=float), pod.timeouts
    assert "--connect-timeout 3" in " ".join(e.value.last.command), "the verdict is the full probe's"


def test_a_short_connect_timeout_never_makes_a_check_that_expects_no_connection_pass():
    pod = ScriptedPod(down_for=10**6)
    got = probes.eventually(curl_probe(pod), lambda r: r.status is None, deadline_s=5, interval_s=0)
    assert got.status is None
    assert pod.timeouts == ["0.5", "3", "3", "3"], "the shortened attempt only said when to start"


def test_a_refused_connection_counts_whatever_the_connect_timeout():
    pod = ScriptedPod(down_for=10**6, down_rc=7)  # refused at once: the probe as given is refused as well
    got = probes.eventually(curl_probe(pod), lambda r: r.status is None, deadline_s=5, interval_s=0)
    assert got.status is None and "(7)" in got.error
    assert pod.timeouts == ["0.5", "3", "3"], "the refusal counts (attempts in one exec stop at a failure)"


def test_a_shortened_attempt_that_gave_up_breaks_a_streak_it_cannot_prove():
    answers = iter([(0, "HTTP/1.1 200 OK\r\n\r\nhi", ""), (28, "", "curl: (28) timed out")])

    class Flaky(ScriptedPod):
        def attempt(self, cmd: str) -> tuple[int, str, str]:
            self.timeouts.append(re.search(r"--connect-timeout (\S+)", cmd).group(1))
            return next(answers, (0, "HTTP/1.1 200 OK\r\n\r\nhi", ""))

    pod = Flaky(down_for=0)
    got = probes.eventually(curl_probe(pod), lambda r: r.status == 200, deadline_s=5, interval_s=0)
    assert got.status == 200
    assert pod.timeouts == ["0.5", "0.5", "3", "3", "3"], "an answer, a give-up, then 3 in a row as given"
