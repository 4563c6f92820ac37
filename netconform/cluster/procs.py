"""Start, find and stop the cluster's host processes; every one has a pid file and a log file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import cgroups, paths, xtables


class ComponentFailed(RuntimeError):
    """A component exited or never became ready; the message names it, its log and the log's last lines."""

    def __init__(self, name: str, reason: str) -> None:
        log = log_path(name)
        tail = ""
        if log.exists():
            tail = "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-12:])
        super().__init__(f"{name} {reason}; log {log}:\n{tail}")
        self.component = name


def log_path(name: str) -> Path:
    return paths.LOGS / f"{name}.log"


def pid_dir() -> Path:
    return paths.STATE / "pids"


def tracking_cgroup() -> Path | None:
    """See cgroups.Layout.tracking: never a process that merely mentions the cluster's paths."""
    return cgroups.host().tracking


def tracked_pids() -> list[int]:
    """Every process in the tracking cgroup (and cgroups below it)."""
    return cgroups.pids(cgroups.tree(tracking_cgroup()))


def remove_tracking_cgroup() -> bool:
    folders = cgroups.tree(tracking_cgroup())
    return bool(folders) and cgroups.remove(folders) == len(folders)


#: Proxy settings a component must not inherit: nothing the cluster runs talks to anything outside this machine,
#: and one honouring a proxy would send its traffic to the API server, the kubelets and the pods to the proxy.
PROXY_VARIABLES = frozenset(
    {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"}
)


def component_env(extra: dict[str, str] | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a cluster component or of kubectl against the cluster: the caller's, without a proxy."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in PROXY_VARIABLES}
    return {**env, **(extra or {})}


def start(
    name: str, argv: list[str], netns: str | None = None, env: dict[str, str] | None = None, nice: int = 0
) -> int:
    """Start a detached process (network namespace only switched, mounts shared) in the tracking cgroup, and record
    its pid. A process in a node's namespace finds the node's iptables first (xtables). `nice` > 0 lowers its CPU
    priority: see `lower_priority`."""
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    pid_dir().mkdir(parents=True, exist_ok=True)
    if netns:
        argv = ["nsenter", f"--net=/var/run/netns/{netns}", "--", *argv]
        env = {**xtables.node_env(), **(env or {})}
    if nice:
        argv = ["nice", "-n", str(nice), *argv]
    cg = tracking_cgroup()
    if cg is not None:
        cg.mkdir(exist_ok=True)
        # The shell joins the cgroup and then becomes the program (same pid): nothing it starts can escape.
        argv = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cg / "cgroup.procs"), *argv]
    with log_path(name).open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=component_env(env),
            close_fds=True,
        )
    (pid_dir() / f"{name}.pid").write_text(str(proc.pid))
    if nice:
        lower_priority(proc.pid, nice)
    return proc.pid


def lower_priority(pid: int, nice: int) -> None:
    """The process's session at nice value `nice`. Every component starts a session of its own, and where the
    kernel groups CPU time by session (`kernel.sched_autogroup_enabled`, on here) each busy session gets an equal
    share whatever its tasks' own nice values (those only order tasks within the session): the session's
    autogroup carries the priority that counts. The tasks' own value (`nice -n`, at exec) counts where sessions
    are not grouped. Raising a nice value needs no privilege; the setting ends with the session."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:  # no autogroup support in this kernel, or the process already ended
        pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still answers kill(0); read its state. A pid can also come back as a thread of another
    # process (kill(0) and /proc/<tid> answer for threads too): only a thread-group leader is the process we started.
    try:
        status = dict(
            line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line
        )
    except OSError:
        return False
    return status.get("Tgid", "").strip() == str(pid) and not status.get("State", "").startswith("Z")


def running(name: str) -> int | None:
    f = pid_dir() / f"{name}.pid"
    if not f.exists():
        return None
    pid = int(f.read_text())
    return pid if alive(pid) else None


def wait_ready(name: str, ready: Callable[[], bool], deadline_s: float, not_ready: str, interval_s: float) -> None:
    """Poll `ready` until it holds while component `name` runs; ComponentFailed (with its log) when it exits first,
    or with `not_ready` once `deadline_s` has passed."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if running(name) is None:
            raise ComponentFailed(name, "exited")
        if ready():
            return
        time.sleep(interval_s)
    raise ComponentFailed(name, f"{not_ready} after {deadline_s:.0f}s")


def recorded() -> dict[str, int]:
    if not pid_dir().exists():
        return {}
    return {f.stem: int(f.read_text()) for f in pid_dir().glob("*.pid")}


def stop_pids(pids: list[int], deadline_s: float = 15.0) -> None:
    """SIGTERM, wait with a deadline (kube-apiserver takes seconds), then SIGKILL."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and any(alive(p) for p in pids):
        _reap()
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    end = time.monotonic() + 5
    while time.monotonic() < end and any(alive(p) for p in pids):
        _reap()
        time.sleep(0.05)


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def pids_matching(fragments: tuple[str, ...]) -> list[int]:
    """Processes whose command line mentions one of `fragments` (tests look for leftovers with it; `down` never
    chooses what to end by it)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(f in cmd for f in fragments):
            found.append(int(d.name))
    return found


def in_node(netns: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """`argv` as run in a node's network namespace, and its environment: the node's iptables first (xtables)."""
    return ["ip", "netns", "exec", netns, *argv], {**os.environ, **xtables.node_env()}


def run(
    argv: list[str],
    netns: str | None = None,
    check: bool = True,
    input: str | None = None,
    timeout_s: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a host command (ip, iptables, mount, ...) with a deadline; a hang becomes an error that names it. In a
    node's namespace (`netns`) the command finds the node's iptables first (xtables)."""
    env = None
    if netns:
        argv, env = in_node(netns, argv)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`{' '.join(argv)}` did not finish within {timeout_s:.0f} s") from None
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()}")
    return proc
