"""A shell kept open in a probe pod: many probe commands through one exec.

Every exec costs the cluster far more CPU than the probe it runs (the API server proxies a new stream, the kubelet
and the runtime start a process through `runc exec`): about 80 ms of CPU on the local cluster, measured, against a
few milliseconds for a curl or a dig. A shell that reads one command per line and answers one line per command
turns a run's many execs into a few per probe pod. The answer keeps what an exec gives: the exit code, stdout and
stderr apart (each in base64 on the answer line, so any bytes and line breaks survive). A command past its deadline
gets exit code 124, as from an exec, but without its partial output; its shell is closed and the next command opens
another. Shells end with the process (their streams close; each pod's `sh` then reads end of file and exits).

Never green by accident: a shell is used only after it ran a known command and answered exactly (so its sh,
base64 and /tmp work); an answer whose plumbing failed (a command that could not be decoded, an answer that does
not parse) is no result, and that pod's commands go back to plain execs for the rest of the run. The shell reads
commands only from this process's exec stream (authorized by the API server as any exec); nothing listens on the
network.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import shlex
import threading
from dataclasses import dataclass, field

from .kube import ExecResult, ExecSession, Kube

#: The shell in the pod ($1 is the session's token). Per line: run the command with stdin from /dev/null, answer
#: `<token> <exit code> <stdout base64> <stderr base64>`; the exit code is `x` when the command could not be decoded.
#: A line "e <command>" (a command without line breaks, as `shlex.join` quotes it) runs in a subshell through
#: `eval`; any other line is a command in base64, written to a file and run by `sh`. Files are named by this shell's
#: pid: its own. Each process a command costs beyond its own is about a millisecond of CPU in the pod (a fork and an
#: exec): the plain form costs one (base64 of stdout) and a second only when there is stderr, where every command
#: once cost four. (`base64 -w0` is GNU and busybox; a shell whose base64 lacks it fails HELLO and is never used.)
LOOP = (
    'd="/tmp/nc-shell.$$"; '
    "while IFS= read -r c; do "
    "r=x; case $c in "
    '"e "*) ( eval "${c#e }" ) </dev/null >"$d.o" 2>"$d.e"; r=$? ;; '
    '*) if printf %s "$c" | base64 -d >"$d.c"; then sh "$d.c" </dev/null >"$d.o" 2>"$d.e"; r=$?; fi ;; '
    "esac; "
    'printf "%s %s " "$1" "$r"; base64 -w0 <"$d.o"; printf " "; if [ -s "$d.e" ]; then base64 -w0 <"$d.e"; fi; '
    "echo; "
    'done; rm -f "$d.c" "$d.o" "$d.e"'
)
#: The command a new shell must answer exactly before it is used.
HELLO = ["printf", "nc-shell-ok"]
HELLO_S = 10.0


class Broken(Exception):
    """The shell answered, but its plumbing failed: the answer is no result."""


def command_line(cmd: list[str]) -> str:
    """What the shell reads for `cmd`: "e " and the command as one shell line; in base64 when a line break in an
    argument would split it (base64 never holds a space, so the two cannot be confused)."""
    line = shlex.join(cmd)
    if "\n" in line or "\r" in line:
        return base64.b64encode(line.encode()).decode()
    return "e " + line


def is_answer(line: str, token: str) -> bool:
    return line.startswith(token + " ")


def parse_answer(line: str) -> ExecResult:
    """The result in one answer line (see LOOP); Broken when the shell could not run or encode the command."""
    parts = line.rstrip("\n").split(" ")
    if len(parts) != 4 or not parts[1].isdigit():
        raise Broken(f"unexpected answer from the probe shell: {line[:120]!r}")
    try:
        out, err = (base64.b64decode(p, validate=True).decode(errors="replace") for p in parts[2:])
    except (binascii.Error, ValueError) as e:
        raise Broken(f"undecodable answer from the probe shell: {e}") from e
    return ExecResult(int(parts[1]), out, err)


@dataclass
class PodShell:
    session: ExecSession
    token: str

    def run(self, cmd: list[str], timeout_s: float) -> ExecResult | None:
        """The command's result; None when the session ended or no answer came within `timeout_s`; Broken."""
        line = self.session.answer(command_line(cmd), lambda got: is_answer(got, self.token), timeout_s)
        return parse_answer(line) if line is not None else None


@dataclass
class ShellPool:
    """The open shells of one API client, by pod. A shell serves one command at a time: concurrent probes from
    one pod open more, and every shell is reused afterwards."""

    kube: Kube
    idle: dict[tuple[str, str], list[PodShell]] = field(default_factory=dict)
    refused: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, namespace: str, pod: str, cmd: list[str], timeout_s: float) -> ExecResult:
        key = (namespace, pod)
        shell = self._take(key)
        if shell is not None:
            try:
                result = shell.run(cmd, timeout_s)
            except Broken:
                self._refuse(key, shell)
            else:
                if result is not None:
                    self._give(key, shell)
                    return result
                alive = shell.session.is_open()
                shell.session.close()
                if alive:
                    # Open but silent: the command outlived its deadline. As with an exec, that is its result.
                    self.kube.check_reachable("a probe shell got no reply")
                    return ExecResult(124, "", f"\n[netconform: command timed out after {timeout_s:.0f}s]")
        # No shell (or its stream ended: the pod replaced, the connection cut): this command as a plain exec.
        return self.kube.exec(namespace, pod, cmd, timeout_s=timeout_s)

    def _take(self, key: tuple[str, str]) -> PodShell | None:
        with self.lock:
            if key in self.refused:
                return None
            shells = self.idle.get(key) or []
            while shells:
                shell = shells.pop()
                if shell.session.is_open():
                    return shell
                shell.session.close()
        return self._open(key)

    def _give(self, key: tuple[str, str], shell: PodShell) -> None:
        with self.lock:
            self.idle.setdefault(key, []).append(shell)

    def _refuse(self, key: tuple[str, str], shell: PodShell) -> None:
        shell.session.close()
        with self.lock:
            self.refused.add(key)

    def _open(self, key: tuple[str, str]) -> PodShell | None:
        """A new shell in the pod, once it answered HELLO exactly; None when it cannot be had (plain execs then)."""
        token = secrets.token_hex(8)
        try:
            session = self.kube.open_exec(key[0], key[1], ["sh", "-c", LOOP, "nc-shell", token])
        except Exception:  # the plain exec that follows reports whatever is wrong
            return None
        shell = PodShell(session, token)
        try:
            hello = shell.run(HELLO, HELLO_S)
        except Broken:
            hello = None
        if hello != ExecResult(0, "nc-shell-ok", ""):
            self._refuse(key, shell)
            return None
        return shell


#: One pool per client, by id: a pool holds its client, so the id stays that client's.
_POOLS: dict[int, ShellPool] = {}
_POOLS_LOCK = threading.Lock()


def pool_of(kube: Kube) -> ShellPool:
    """The shells of this client (shared by its threads)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(id(kube))
        if pool is None:
            pool = _POOLS[id(kube)] = ShellPool(kube)
        return pool


def run(kube: Kube, namespace: str, pod: str, cmd: list[str], timeout_s: float) -> ExecResult:
    """`cmd` in the pod through one of its open shells (see the module's docstring)."""
    return pool_of(kube).run(namespace, pod, cmd, timeout_s)
