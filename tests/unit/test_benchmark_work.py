"""benchmarks/work.py: the counts read from the API server's metrics and the NetworkPolicy reports."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.benchmarks import benchmark


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    with benchmark(monkeypatch, "work") as module:
        yield module


def sample(verb: str, resource: str, code: str, value: int, subresource: str = "") -> str:
    return (
        f'apiserver_request_total{{code="{code}",component="apiserver",dry_run="",group="",resource="{resource}",'
        f'scope="resource",subresource="{subresource}",verb="{verb}",version="v1"}} {value}'
    )


METRICS_BEFORE = "\n".join(
    [
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
        "# TYPE apiserver_request_total counter",
        sample("APPLY", "pods", "201", 10),  # created by server-side apply
        sample("APPLY", "pods", "200", 7),  # applied again, unchanged: not created
        sample("POST", "pods", "201", 2),
        sample("POST", "pods", "403", 5),  # refused: not created
        sample("POST", "pods", "201", 30, subresource="binding"),  # a pod scheduled, not a pod created
        sample("CONNECT", "pods", "0", 4, subresource="exec"),
        sample("APPLY", "services", "201", 3),
        sample("GET", "pods", "200", 100),
        sample("DELETE", "namespaces", "200", 1),
        'apiserver_request_duration_seconds_count{verb="GET"} 999',  # another metric: ignored
    ]
)


def test_request_counts_tell_created_objects_from_applied_again_and_refused(work: ModuleType) -> None:
    counts = work.request_counts(METRICS_BEFORE)
    assert counts["created/pods"] == 12
    assert counts["created/services"] == 3
    assert counts["exec"] == 4
    assert counts["requests"] == 10 + 7 + 2 + 5 + 30 + 4 + 3 + 100 + 1
    assert counts["writes"] == 10 + 7 + 2 + 5 + 30 + 3 + 1  # GET and CONNECT change nothing stored


def test_a_runs_work_is_the_difference_of_two_readings(work: ModuleType) -> None:
    after = METRICS_BEFORE.replace(sample("APPLY", "pods", "201", 10), sample("APPLY", "pods", "201", 47))
    after = after.replace(
        sample("CONNECT", "pods", "0", 4, subresource="exec"), sample("CONNECT", "pods", "0", 30, "exec")
    )
    line = work.summary(
        work.request_counts(METRICS_BEFORE),
        work.request_counts(after),
        Counter({"iptables": 1800, "curl": 270, "cat": 360}),
        (19, 10656),
    )
    assert line.startswith("work: 37 pods, 0 Services, 0 namespaces, 0 policies, 26 execs; 63 API requests (37 writes)")
    assert "2430 processes started (iptables 1800, cat 360, curl 270)" in line
    assert line.endswith("NetworkPolicy 19 probe rounds, 10656 connections")


def test_without_perf_the_process_count_says_it_was_not_counted(work: ModuleType) -> None:
    line = work.summary(Counter(), Counter(), None, (0, 0))
    assert "processes started: not counted (no perf, or it ended before the count did)" in line


def test_policy_work_counts_every_compared_cell_of_every_round(work: ModuleType, tmp_path: Path) -> None:
    folder = tmp_path / "networkpolicy"
    folder.mkdir()
    # Two tables of a 3-pod lab: 6 compared cells each (the diagonal `-`, a pod to itself, is never probed).
    tables = {t: {"expected": ["-X.", ".-X", "..-"], "observed": ["-..", ".-.", "..-"]} for t in ("80/TCP", "81/UDP")}
    (folder / "one.json").write_text(json.dumps({"probe_rounds": 1, "tables": tables}))
    (folder / "two.json").write_text(json.dumps({"probe_rounds": 3, "tables": tables}))
    assert work.policy_work(tmp_path) == (4, 4 * 12)


def test_a_run_without_networkpolicy_reports_made_no_policy_probes(work: ModuleType, tmp_path: Path) -> None:
    assert work.policy_work(tmp_path) == (0, 0)


def test_policy_reports_older_than_the_count_are_another_runs(work: ModuleType, tmp_path: Path) -> None:
    folder = tmp_path / "networkpolicy"
    folder.mkdir()
    tables = {"80/TCP": {"expected": ["-X", ".-"], "observed": ["-X", ".-"]}}
    (folder / "old.json").write_text(json.dumps({"probe_rounds": 5, "tables": tables}))
    since = (folder / "old.json").stat().st_mtime + 1
    assert work.policy_work(tmp_path, since=since) == (0, 0)
    assert work.policy_work(tmp_path) == (5, 10)
