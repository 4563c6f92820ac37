"""netconform/at_once.py: independent requests made at once, answered in order, failing as a loop would."""

from __future__ import annotations

import threading

import pytest

from netconform.at_once import at_once


def test_answers_come_in_the_order_of_the_items() -> None:
    assert at_once(lambda n: n * n, [3, 1, 2]) == [9, 1, 4]
    assert at_once(lambda n: n, []) == []


def test_every_item_runs_at_the_same_time() -> None:
    everyone_started = threading.Barrier(4, timeout=10)  # breaks (and fails the test) if they ran in turn
    assert at_once(lambda n: everyone_started.wait() >= 0 and n, [1, 2, 3, 4]) == [1, 2, 3, 4]


def test_the_first_failure_in_order_is_raised_after_every_item_ended() -> None:
    ended: list[int] = []
    second_may_fail = threading.Event()

    def request(n: int) -> int:
        if n == 1:
            second_may_fail.wait(10)  # item 2 fails first in time; item 1's failure is still the one raised
            ended.append(n)
            raise LookupError("first")
        if n == 2:
            second_may_fail.set()
            ended.append(n)
            raise ValueError("second")
        ended.append(n)
        return n

    with pytest.raises(LookupError, match="first"):
        at_once(request, [0, 1, 2, 3])
    assert sorted(ended) == [0, 1, 2, 3]


def test_items_run_on_daemon_threads_so_an_interrupted_run_does_not_wait_for_them() -> None:
    assert at_once(lambda _: threading.current_thread().daemon, [1, 2]) == [True, True]
