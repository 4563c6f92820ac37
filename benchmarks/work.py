"""The work a suite run asks of the cluster, counted: what the suite controls and this machine's speed does not move.
Wall time and CPU seconds per run both change by the hour here (the same code took 44-46 CPU-s per 1-node run one
day, 56-59 the next), so a change's effect on cost shows beside them as fewer objects, exec sessions, process starts
or probe connections.

Counted from the API server's own request counters (`apiserver_request_total`, read before the run and after its
namespaces are gone, through `kubectl get --raw /metrics`): objects created by kind (a POST or server-side apply
answered 201 Created, by anyone: the suite or the cluster's controllers for it), exec sessions, all requests and the
writes among them (an idle 2-node cluster makes about one a second of its own). From the kernel (`perf record -e
sched:sched_process_exec -a`, every CPU, when `perf` is there): processes started anywhere on the machine during the
run, by command. From the run's NetworkPolicy reports: whole probe rounds and the connections they made (the canary
probes between them not counted).

Usage (as root, on the running local cluster, `kubectl` on PATH):
    python3 benchmarks/work.py [--kubeconfig KC] -- pytest -q -p no:randomly --kube-config=KC -n 4 --dist loadfile
    python3 benchmarks/work.py start DIR [--kubeconfig KC]; ...; python3 benchmarks/work.py stop DIR [--reports R]
(`start` and `stop` around a command timed elsewhere: benchmarks/suite.sh; `drop DIR` ends a count without a summary).
`--reports` is the run's report folder (reports/<run>), reports/latest by default."""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from cpu_by_command import PERF_RECORD, samples_by_command  # this script's folder is first on the import path
from cpu_by_process import exit_with, run_to_the_end

#: Verbs that change what the API server stores.
WRITES = {"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}
#: Kinds named in the summary line, in this order, with their plural names in the API's counters.
SHOWN = (("pods", "pods"), ("services", "Services"), ("namespaces", "namespaces"), ("networkpolicies", "policies"))
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def request_counts(metrics: str) -> Counter[str]:
    """From the API server's metrics text: `created/<resource>`, `exec`, `requests` and `writes`, each a running total
    since the server started (subtract one reading from a later one)."""
    counts: Counter[str] = Counter()
    for line in metrics.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        n = int(float(m.group("value")))
        verb, resource, sub = labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", "")
        counts["requests"] += n
        if verb in WRITES:
            counts["writes"] += n
        if sub == "exec":
            counts["exec"] += n
        if verb in ("POST", "APPLY") and labels.get("code") == "201" and not sub:
            counts[f"created/{resource}"] += n
    return counts


def policy_work(report_folder: Path, since: float = 0) -> tuple[int, int]:
    """(whole probe rounds, connections they made) from a run's reports/<run>/networkpolicy/*.json written after
    `since` (a time.time(): an older report is another run's): each round probes every compared cell of the check's
    tables (`.` or `X` in the expected table; `-`, a pod to itself, is not probed)."""
    rounds = connections = 0
    for f in sorted((report_folder / "networkpolicy").glob("*.json")):
        if f.stat().st_mtime < since:
            continue
        doc = json.loads(f.read_text())
        cells = sum(row.count(".") + row.count("X") for t in doc["tables"].values() for row in t["expected"])
        rounds += doc["probe_rounds"]
        connections += doc["probe_rounds"] * cells
    return rounds, connections


def summary(before: Counter[str], after: Counter[str], execs: Counter[str] | None, policy: tuple[int, int]) -> str:
    """One line: what the run created and asked for; then the commands started most often."""
    d = after.copy()
    d.subtract(before)
    made = ", ".join(f"{d[f'created/{r}']} {name}" for r, name in SHOWN)
    line = f"work: {made}, {d['exec']} execs; {d['requests']} API requests ({d['writes']} writes)"
    if execs is None:
        line += "; processes started: not counted (no perf, or it ended before the count did)"
    else:
        top = ", ".join(f"{name} {n}" for name, n in execs.most_common(6))
        line += f"; {sum(execs.values())} processes started ({top})"
    rounds, connections = policy
    return line + f"; NetworkPolicy {rounds} probe rounds, {connections} connections"


@functools.cache
def own_kubecache() -> str:
    """A folder for kubectl's caches, made once per process and removed at its exit."""
    folder = tempfile.mkdtemp(prefix="netconform-kubectl-cache.")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def kubectl_env() -> dict[str, str]:
    """kubectl's environment: its discovery and HTTP caches in a folder of this process's, not in root's
    ~/.kube/cache; a KUBECACHEDIR already set (the shell benchmarks set one) is kept."""
    if os.environ.get("KUBECACHEDIR"):
        return dict(os.environ)
    return {**os.environ, "KUBECACHEDIR": own_kubecache()}


def read_metrics(kubeconfig: str | None) -> str:
    argv = ["kubectl", *([f"--kubeconfig={kubeconfig}"] if kubeconfig else []), "get", "--raw", "/metrics"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=kubectl_env())
    if done.returncode != 0:
        sys.exit(f"work.py: cannot read the API server's metrics: {done.stderr.strip() or done.returncode}")
    return done.stdout


def start(folder: Path, kubeconfig: str | None) -> None:
    """Read the counters and start counting process starts (perf in the background, its pid in the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "before.prom").write_text(read_metrics(kubeconfig))
    if shutil.which("perf"):
        perf = subprocess.Popen(
            [*PERF_RECORD, "-e", "sched:sched_process_exec", "-a", "-o", str(folder / "exec.data")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # in the caller's process group: a Ctrl-C at the terminal stops it with the command counted
        (folder / "perf.pid").write_text(str(perf.pid))
        time.sleep(0.5)  # perf opens its events on every CPU before the command starts


def stop_counting(folder: Path) -> Path | None:
    """End the process count `start` began, if it did (perf writes its recording on SIGINT; a Ctrl-C may have reached
    it first); the recording, when there is one."""
    pid_file = folder / "perf.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    pid_file.unlink()
    data = folder / "exec.data"
    if _recording(pid, data):  # only the perf that `start` began: once it ended, its pid may be another process's
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    end = time.monotonic() + 30
    while time.monotonic() < end and _recording(pid, data):
        try:
            os.waitpid(pid, os.WNOHANG)  # reaps it when this process started it (the `--` form)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return data if data.exists() and data.stat().st_size > 0 else None


def _recording(pid: int, data: Path) -> bool:
    """Whether process `pid` is a live perf writing `data` (an ended one's command line reads empty)."""
    try:
        return str(data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def settle(kubeconfig: str | None) -> None:
    """Wait (at most 2 minutes) until every run's namespaces are gone: their deletion, which the cluster does after
    the suite has ended, is part of a run's work (most of its writes: the namespace controller deletes each kind in
    each namespace), and a count read before it ends would depend on how far it got."""
    argv = ["kubectl", *([f"--kubeconfig={kubeconfig}"] if kubeconfig else [])]
    argv += ["wait", "--for=delete", "namespace", "-l", "netconform.io/run", "--timeout=120s"]
    subprocess.run(argv, capture_output=True, timeout=150, env=kubectl_env())


def stop(folder: Path, kubeconfig: str | None, reports: Path) -> str:
    """Once the run's namespaces are gone, stop counting and summarise against what `start` read."""
    if not (folder / "before.prom").exists():
        sys.exit(f"work.py: {folder} holds no count: `work.py start {folder}` begins one")
    settle(kubeconfig)
    execs: Counter[str] | None = None
    recording = stop_counting(folder)
    if recording:
        report = subprocess.run(
            ["perf", "report", "-i", str(recording), "--sort", "comm", "--stdio", "--show-nr-samples"],
            capture_output=True,
            text=True,
        ).stdout
        execs = samples_by_command(report)
    before = request_counts((folder / "before.prom").read_text())
    after = request_counts(read_metrics(kubeconfig))
    return summary(before, after, execs, policy_work(reports, since=(folder / "before.prom").stat().st_mtime))


def main() -> int:
    argv = sys.argv[1:]
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", nargs="?", choices=("start", "stop", "drop"))
    p.add_argument("folder", nargs="?", type=Path)
    p.add_argument("--kubeconfig")
    p.add_argument("--reports", type=Path, default=Path("reports/latest"))
    args = p.parse_args(own)
    if args.action:
        if args.folder is None or command:
            p.error(f"{args.action} takes a folder and no command")
        if args.action == "start":
            start(args.folder, args.kubeconfig)
        elif args.action == "drop":
            stop_counting(args.folder)
        else:
            print(stop(args.folder, args.kubeconfig, args.reports))
        return 0
    if not command:
        p.error("give start FOLDER, stop FOLDER, or a command after --")
    with tempfile.TemporaryDirectory(prefix="nc-work-") as tmp:
        folder = Path(tmp)
        start(folder, args.kubeconfig)
        try:
            rc, interrupted = run_to_the_end(command)
            if interrupted:
                raise KeyboardInterrupt
            print(stop(folder, args.kubeconfig, args.reports))
        finally:
            stop_counting(folder)  # nothing left to end once `stop` has: this is for an interrupted count
    return rc


if __name__ == "__main__":
    exit_with(main, "work")
