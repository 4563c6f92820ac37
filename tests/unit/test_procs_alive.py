"""A recorded pid is alive only while it is the process that was started: not a zombie, not a thread of another."""

import os
import subprocess
import sys
import threading

import pytest

from netconform.cluster import procs


def test_a_running_process_is_alive_and_an_ended_one_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert procs.alive(child.pid)
    finally:
        child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    assert not procs.alive(child.pid), "a zombie child is not alive"
    child.wait()
    assert not procs.alive(child.pid)


def test_a_thread_id_is_not_a_process() -> None:
    """A pid reused as another process's thread id answers kill(0); it is not ours to treat as running."""
    seen: list[int] = []
    done = threading.Event()
    t = threading.Thread(target=lambda: (seen.append(threading.get_native_id()), done.wait(5)))
    t.start()
    try:
        while not seen:
            pass
        assert seen[0] != os.getpid()
        assert not procs.alive(seen[0])
    finally:
        done.set()
        t.join()


def test_waiting_for_a_component_ends_when_it_is_ready_exits_or_runs_out_of_time(monkeypatch):
    monkeypatch.setattr(procs, "running", lambda name: 4242)
    calls = iter([False, False, True])
    procs.wait_ready("kubelet-n1", lambda: next(calls), 5, "no socket", interval_s=0.01)
    with pytest.raises(procs.ComponentFailed, match="kubelet-n1 no socket after 0s"):
        procs.wait_ready("kubelet-n1", lambda: False, 0.05, "no socket", interval_s=0.01)
    monkeypatch.setattr(procs, "running", lambda name: None)
    with pytest.raises(procs.ComponentFailed, match="kubelet-n1 exited"):
        procs.wait_ready("kubelet-n1", lambda: True, 5, "no socket", interval_s=0.01)
