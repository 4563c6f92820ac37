"""The probe shell's loop (run here by a local `sh`, as the pod runs it) and the pool's choices between a shell and
a plain exec (a fake client whose sessions are local shells)."""

from __future__ import annotations

import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netconform import podshell
from netconform.kube import ExecResult

#: The shells' files go here, not to the host's /tmp: a test that kills a shell (a pod replaced) ends it before its
#: clean-up, and every run of these tests once left 22 files in /tmp.
SCRATCH = Path("/nonexistent")


@pytest.fixture(autouse=True, scope="module")
def scratch() -> Iterator[Path]:
    global SCRATCH
    SCRATCH = Path(tempfile.mkdtemp(prefix="nc-podshell-test-"))
    yield SCRATCH
    shutil.rmtree(SCRATCH, ignore_errors=True)


class LocalSession:
    """The exec stream of `sh -c LOOP`, with a local process in place of the pod."""

    def __init__(self, command: list[str]) -> None:
        command = [c.replace("/tmp/", f"{SCRATCH}/") for c in command]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def answer(self, line: str, is_answer: Callable[[str], bool], timeout_s: float) -> str | None:
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            got = self.proc.stdout.readline()
            if not got:
                return None
            if is_answer(got.rstrip("\n")):
                return got.rstrip("\n")
        return None

    def is_open(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """As the exec stream ends: the shell reads end of file and exits (killed if it has not within 1 s: one still
        running a command past its deadline; its files are in SCRATCH, removed with it)."""
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def shell(token: str = "t0k") -> podshell.PodShell:
    return podshell.PodShell(LocalSession(["sh", "-c", podshell.LOOP, "nc-shell", token]), token)  # type: ignore[arg-type]


def test_the_shell_keeps_exit_code_stdout_and_stderr_apart() -> None:
    sh = shell()
    try:
        got = sh.run(["sh", "-c", "printf 'two\\nlines'; printf 'oops\\n' >&2; exit 3"], 5)
        assert got == ExecResult(3, "two\nlines", "oops\n")
        # The next command on the same shell: nothing of the first one is left over.
        assert sh.run(["printf", "%s", 'it\'s "quoted" $HOME'], 5) == ExecResult(0, 'it\'s "quoted" $HOME', "")
    finally:
        sh.session.close()


def test_a_shell_whose_stream_ends_removes_its_files(scratch: Path) -> None:
    sh = shell()
    pid = sh.session.proc.pid  # type: ignore[attr-defined]
    try:
        assert sh.run(["sh", "-c", "echo out; echo err >&2"], 5) == ExecResult(0, "out\n", "err\n")
        assert list(scratch.glob(f"nc-shell.{pid}.*")), "the shell keeps its command's output in files"
    finally:
        sh.session.close()
    assert list(scratch.glob(f"nc-shell.{pid}.*")) == []


def test_every_argument_reaches_the_command_as_given_on_either_path() -> None:
    tricky = ["$1", "$d", "$(echo no)", "`echo no`", "a'b", 'c"d', "x;y", "*", "", "e ", "tab\there"]
    plain, multiline = ["printf", "%s|", *tricky], ["printf", "%s|", *tricky, "two\nlines"]
    assert podshell.command_line(plain).startswith("e "), "a one-line command runs through eval"
    assert " " not in podshell.command_line(multiline), "a line break in an argument goes in base64"
    sh = shell()
    try:
        assert sh.run(plain, 5) == ExecResult(0, "".join(f"{a}|" for a in tricky), "")
        assert sh.run(multiline, 5) == ExecResult(0, "".join(f"{a}|" for a in tricky) + "two\nlines|", "")
        assert sh.run(["sh", "-c", "exit 7"], 5) == ExecResult(7, "", ""), "exit ends the command, not the shell"
        assert sh.run(["echo", "still here"], 5) == ExecResult(0, "still here\n", "")
    finally:
        sh.session.close()


def test_a_command_reads_no_stdin_so_it_cannot_eat_the_next_command() -> None:
    sh = shell()
    try:
        assert sh.run(["cat"], 5) == ExecResult(0, "", "")
        assert sh.run(["echo", "after"], 5) == ExecResult(0, "after\n", "")
    finally:
        sh.session.close()


def test_a_command_that_outlives_its_deadline_gives_no_result() -> None:
    sh = shell()
    try:
        assert sh.run(["sleep", "5"], 0.3) is None
    finally:
        sh.session.close()


def test_an_answer_whose_plumbing_failed_is_no_result() -> None:
    with pytest.raises(podshell.Broken):
        podshell.parse_answer("t0k x  ")  # the shell could not decode or encode
    with pytest.raises(podshell.Broken):
        podshell.parse_answer("t0k 0 not-base64! ")
    sh = shell()
    try:
        line = sh.session.answer("!!!", lambda got: podshell.is_answer(got, "t0k"), 5)
        assert line is not None
        with pytest.raises(podshell.Broken):
            podshell.parse_answer(line)
    finally:
        sh.session.close()


@dataclass
class FakeKube:
    """Sessions are local shells running `loop` (the real one unless a test breaks it); execs are recorded."""

    loop: str = podshell.LOOP
    opened: int = 0
    execs: list[list[str]] = field(default_factory=list)
    sessions: list[LocalSession] = field(default_factory=list)

    def open_exec(self, namespace: str, pod: str, command: list[str]) -> LocalSession:
        self.opened += 1
        assert command[:2] == ["sh", "-c"]
        session = LocalSession(["sh", "-c", self.loop, *command[3:]])
        self.sessions.append(session)
        return session

    def exec(self, namespace: str, pod: str, command: list[str], timeout_s: float = 30) -> ExecResult:
        self.execs.append(command)
        return ExecResult(0, "from a plain exec", "")

    def check_reachable(self, why: str) -> None:
        pass

    def close(self) -> None:
        for s in self.sessions:
            s.close()


def test_the_pool_runs_every_command_of_a_pod_through_one_shell() -> None:
    kube = FakeKube()
    pool = podshell.ShellPool(kube)  # type: ignore[arg-type]
    try:
        for word in ("one", "two", "three"):
            assert pool.run("ns", "pod", ["echo", word], 5) == ExecResult(0, f"{word}\n", "")
        assert (kube.opened, kube.execs) == (1, [])
    finally:
        kube.close()


def test_a_shell_that_does_not_answer_hello_exactly_is_never_used() -> None:
    # A pod without base64: every answer's plumbing fails. Its probes must not read as "no output, exit 0".
    kube = FakeKube(loop=podshell.LOOP.replace("base64", "no-such-base64"))
    pool = podshell.ShellPool(kube)  # type: ignore[arg-type]
    try:
        assert pool.run("ns", "pod", ["echo", "x"], 5) == ExecResult(0, "from a plain exec", "")
        assert pool.run("ns", "pod", ["echo", "y"], 5) == ExecResult(0, "from a plain exec", "")
        assert kube.opened == 1, "a refused pod is not asked again"
        assert kube.execs == [["echo", "x"], ["echo", "y"]]
    finally:
        kube.close()


def test_a_command_whose_shell_ended_runs_as_a_plain_exec() -> None:
    kube = FakeKube()
    pool = podshell.ShellPool(kube)  # type: ignore[arg-type]
    try:
        assert pool.run("ns", "pod", ["echo", "first"], 5).stdout == "first\n"
        kube.sessions[0].proc.kill()  # the pod was replaced, the stream cut
        kube.sessions[0].proc.wait()
        assert pool.run("ns", "pod", ["echo", "second"], 5).stdout == "second\n"  # a new shell
        assert kube.opened == 2
    finally:
        kube.close()


def test_a_command_past_its_deadline_gets_exit_124_as_from_an_exec() -> None:
    kube = FakeKube()
    pool = podshell.ShellPool(kube)  # type: ignore[arg-type]
    try:
        got = pool.run("ns", "pod", ["sleep", "5"], 0.3)
        assert got.rc == 124 and "timed out" in got.stderr
        assert pool.run("ns", "pod", ["echo", "next"], 5).stdout == "next\n"  # on a new shell
        assert kube.execs == []
    finally:
        kube.close()
