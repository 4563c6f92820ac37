"""Polling with a deadline: the state a timeout reports is read once, at the end, not on every poll."""

from __future__ import annotations

import pytest

from netconform.errors import WaitTimeout
from netconform.kube import wait


def test_a_wait_that_succeeds_never_asks_for_a_description() -> None:
    answers = iter([None, None, "ready"])
    described: list[int] = []
    got = wait("x", lambda: next(answers), 5, interval_s=0.01, describe=lambda: described.append(1))
    assert got == "ready" and described == []


def test_a_wait_that_times_out_reports_the_description_read_at_the_end() -> None:
    described: list[int] = []

    def describe() -> str:
        described.append(1)
        return "pod web-1 phase=Pending"

    with pytest.raises(WaitTimeout) as e:
        wait("web ready", lambda: None, 0.05, interval_s=0.01, describe=describe)
    assert described == [1]
    assert "waiting for web ready; last observed: pod web-1 phase=Pending" in str(e.value)


def test_a_transient_error_is_the_last_observation_when_it_is_the_last_thing_seen() -> None:
    def probe() -> None:
        raise ConnectionResetError("reset by peer")

    with pytest.raises(WaitTimeout) as e:
        wait("web ready", probe, 0.05, interval_s=0.01, describe=lambda: "never asked")
    assert "last observed: ConnectionResetError: reset by peer" in str(e.value)
