"""The run's end stops namespace creations and waits for those under way, so that its deletion finds them all."""

import threading

import pytest

from fixtures.namespaces import Creations, RunEnding


def test_a_creation_after_the_run_ends_is_refused():
    creations = Creations()
    assert creations.close(timeout_s=0.1)
    with pytest.raises(RunEnding, match="nc-dns-r1 not created: the run is ending"):
        creations.begin("nc-dns-r1")


def test_the_end_waits_for_a_creation_under_way():
    creations = Creations()
    creations.begin("nc-dns-r1")
    done = threading.Event()

    def finish_later() -> None:
        done.wait(5)
        creations.end()

    threading.Thread(target=finish_later).start()
    closing = threading.Thread(target=lambda: results.append(creations.close(timeout_s=5)))
    results: list[bool] = []
    closing.start()
    closing.join(0.2)
    assert closing.is_alive(), "close returned while a creation was still under way"
    done.set()
    closing.join(5)
    assert results == [True]


def test_the_end_gives_up_waiting_after_its_deadline():
    creations = Creations()
    creations.begin("nc-dns-r1")
    assert creations.close(timeout_s=0.05) is False
