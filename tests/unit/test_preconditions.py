"""A precondition that fails notes its layer for the whole run; a later one whose path goes through a layer already
found broken waits only a short while, and says why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fixtures import preconditions
from fixtures.preconditions import CLUSTER_DNS, INGRESS, SERVICE_PROXY, Precondition
from netconform import probes
from netconform.runs import RunFiles
from netconform.settings import Settings


@dataclass
class NoAnswer:
    command: list[str]

    def summary(self) -> str:
        return "no HTTP answer (curl: (28) Connection timed out)"


class Client:
    def describe(self) -> str:
        return "pod ns/client (10.244.0.5 on node-1)"

    def repro(self, cmd: list[str]) -> str:
        return "kubectl exec -n ns client -- " + " ".join(cmd)


@pytest.fixture
def waited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[float]:
    """The deadline of every probe made, each of which never holds; the run's files in a folder of the test's."""
    deadlines: list[float] = []

    def never(attempt: Any, ok: Any, deadline_s: float, **_: Any) -> Any:
        deadlines.append(deadline_s)
        raise probes.NotConsistent(NoAnswer(["curl", "http://10.96.0.10/"]), 3, 0, deadline_s)

    monkeypatch.setattr(probes, "eventually", never)
    monkeypatch.setattr(preconditions, "REPORTS", tmp_path)
    monkeypatch.setenv("NETCONFORM_RUN_ID", "rtest")
    return deadlines


def probe(through: tuple[str, ...], timeout_scale: float = 1.0) -> Precondition:
    cluster = SimpleNamespace(settings=Settings(timeout_scale=timeout_scale))
    return Precondition.probe(
        cluster,  # type: ignore[arg-type]
        f"the {through[0]} does not answer",
        Client(),  # type: ignore[arg-type]
        lambda: None,
        lambda r: False,
        expected="an answer",
        objects=("service ns/web (10.96.0.10)",),
        through=through,
        hint="is it running?",
    )


def test_the_first_miss_waits_the_full_deadline_and_is_noted_for_the_run(waited: list[float], tmp_path: Path) -> None:
    failed = probe((SERVICE_PROXY,))
    assert waited == [probes.PROBE_S]
    assert failed.failure and "(waited only" not in failed.failure
    assert RunFiles(tmp_path, "rtest").missed() == {SERVICE_PROXY}


def test_a_path_through_a_layer_already_broken_waits_only_briefly_and_says_why(waited: list[float]) -> None:
    probe((SERVICE_PROXY,))
    ingress = probe((INGRESS, SERVICE_PROXY), timeout_scale=2.0)
    assert waited == [probes.PROBE_S, 2.0 * preconditions.AFTER_A_MISS_S]
    assert ingress.failure and (
        "is it running? (waited only 6 s: the Service proxy already failed another precondition in this run)"
        in ingress.failure
    )


def test_a_path_that_does_not_go_through_the_broken_layer_keeps_its_full_deadline(waited: list[float]) -> None:
    probe((CLUSTER_DNS, SERVICE_PROXY))
    probe((SERVICE_PROXY,))
    probe((INGRESS, SERVICE_PROXY))
    assert waited == [probes.PROBE_S, probes.PROBE_S, preconditions.AFTER_A_MISS_S]


def test_a_new_run_with_the_same_id_knows_of_no_broken_layer(tmp_path: Path) -> None:
    files = RunFiles(tmp_path, "rsame")
    files.note_missed(SERVICE_PROXY)
    files.note_missed(CLUSTER_DNS)
    assert files.missed() == {SERVICE_PROXY, CLUSTER_DNS}
    files.forget_missed()
    assert files.missed() == set()
