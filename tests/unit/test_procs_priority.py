"""A component started at a lower CPU priority runs at it: its own nice value, and its session's where the kernel
shares CPU time out by session."""

import os
import signal
from functools import partial
from pathlib import Path

import pytest

from netconform.cluster import paths, procs
from netconform.kube import wait


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "STATE", tmp_path)
    monkeypatch.setattr(paths, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(procs, "tracking_cgroup", lambda: None)
    return tmp_path


def autogroup_nice(pid: int) -> int | None:
    """The nice value of the process's session group ("/autogroup-N nice V"), if the kernel groups it by session.

    The file is absent without autogroup support, and empty where the process's CPU share is set by a cgroup
    instead (as in a CI sandbox that puts its jobs in a cpu cgroup): neither has a session priority to check."""
    f = Path(f"/proc/{pid}/autogroup")
    words = f.read_text().split() if f.exists() else []
    return int(words[-1]) if words else None


def runs_sleep(pid: int) -> bool:
    return Path(f"/proc/{pid}/comm").read_text() == "sleep\n"


def test_a_component_started_nice_runs_nice_in_its_own_session_and_others_do_not(state: Path) -> None:
    ours = autogroup_nice(os.getpid())
    low = procs.start("low", ["sleep", "30"], nice=10)
    plain = procs.start("plain", ["sleep", "30"])
    try:
        for pid in (low, plain):  # `nice` sets the value, then becomes the program
            wait(f"pid {pid} running sleep", partial(runs_sleep, pid), 5, 0.01)
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, low) == min(19, base + 10)
        assert os.getpriority(os.PRIO_PROCESS, plain) == base
        assert os.getsid(low) == low, "a component is the leader of a session of its own"
        if autogroup_nice(low) is not None:
            assert autogroup_nice(low) == 10
            assert autogroup_nice(plain) == 0
            assert autogroup_nice(os.getpid()) == ours, "the caller's session keeps its priority"
        assert (state / "pids" / "low.pid").read_text() == str(low)
    finally:
        for pid in (low, plain):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
