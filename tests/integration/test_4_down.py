"""`netconform cluster down` removes every process, namespace, link, chain and mount the cluster created, and
nothing else: a process that only names the cluster's paths lives on, and the host's kernel settings are as before
`up`. Then, on the empty host: `up` refuses a conflicting route without touching any, and an interrupted `up`
leaves nothing behind."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from netconform.cluster import config, hostsys, paths, procs


def nothing_left() -> list[str]:
    """What of a cluster is still on the host (empty: nothing)."""
    found = []
    if procs.pids_matching((str(paths.STATE), str(config.RUN))) or procs.tracked_pids():
        found.append(f"processes {procs.pids_matching((str(paths.STATE), str(config.RUN))) + procs.tracked_pids()}")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    if "nc-node-" in netns:
        found.append(f"netns {netns.split()}")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30).stdout
    if config.BRIDGE in links or " ncv" in links:
        found.append("links")
    if paths.STATE.exists() or config.RUN.exists():
        found.append("state folders")
    return found


def test_down_spares_a_process_that_names_its_paths_and_restores_the_host_settings():
    """`down` ends only what the cluster started (its cgroups), not a user's process that mentions the admin
    kubeconfig; and the kernel settings the kubelets changed are back to what `up` found."""
    saved = json.loads(hostsys.snapshot_path().read_text())
    outsider = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", f"--kubeconfig={paths.KUBECONFIG}", str(config.RUN)]
    )
    try:
        proc = subprocess.run(["netconform", "cluster", "down"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert outsider.poll() is None, "down ended a process it did not start"
    finally:
        outsider.kill()
        outsider.wait(10)
    assert hostsys.read() == saved, f"host settings now {hostsys.read()}, before up {saved}"


def test_down_leaves_nothing_behind():
    proc = subprocess.run(["netconform", "cluster", "down"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    leftovers = procs.pids_matching((str(paths.STATE), str(config.RUN)))
    assert not leftovers, f"processes left: {leftovers}"
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    assert "nc-node-" not in netns, netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30).stdout
    assert config.BRIDGE not in links and " ncv" not in links and "cni0" not in links, links
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, timeout=30).stdout
    assert config.HOST_CHAIN not in rules and "KUBE-" not in rules, rules
    mounts = Path("/proc/self/mounts").read_text()
    assert str(paths.STATE) not in mounts and str(config.RUN) not in mounts
    assert not paths.STATE.exists() and not list(Path("/sys/fs/cgroup/cpu").glob("nc-node-*"))
    again = subprocess.run(["netconform", "cluster", "down"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, "down is not safe to run twice"


def routes() -> str:
    return subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True, text=True, timeout=30).stdout


def test_up_refuses_a_route_that_overlaps_its_ranges_and_touches_no_route():
    """A route in the pod range already on the host: `up` names it and stops before building or starting anything."""
    subprocess.run(["ip", "link", "add", "ncdummy9", "type", "bridge"], check=True, timeout=30)
    try:
        subprocess.run(["ip", "addr", "add", "10.244.250.1/24", "dev", "ncdummy9"], check=True, timeout=30)
        subprocess.run(["ip", "link", "set", "ncdummy9", "up"], check=True, timeout=30)
        before = routes()
        up = subprocess.run(
            ["netconform", "cluster", "up", "--nodes", "2"], capture_output=True, text=True, timeout=120
        )
        assert up.returncode == 2, up.stderr
        assert "10.244.250.0/24 dev ncdummy9 overlaps 10.244.0.0/16 (pod addresses)" in up.stderr, up.stderr
        assert "nothing was built or started" in up.stderr
        assert routes() == before and not nothing_left()
    finally:
        subprocess.run(["ip", "link", "del", "ncdummy9"], timeout=30)


def test_an_interrupted_up_removes_what_it_started():
    """Ctrl-C while `up` is starting the control plane: everything it started is gone, and it says so."""
    up = subprocess.Popen(["netconform", "cluster", "up", "--nodes", "1"], stderr=subprocess.PIPE, text=True)
    assert up.stderr is not None
    seen, end = "", time.monotonic() + 180
    try:
        while "kube-apiserver ready" not in seen and time.monotonic() < end and up.poll() is None:
            if select.select([up.stderr], [], [], 1)[0]:
                seen += up.stderr.readline()
        assert "kube-apiserver ready" in seen, seen
        up.send_signal(signal.SIGINT)
        rest = up.communicate(timeout=120)[1]
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 130, seen + rest
    assert "up interrupted; removing what it started" in rest, rest
    assert not nothing_left(), nothing_left()
    assert (paths.CACHE / "logs" / "last-failed-up" / "kube-apiserver.log").exists()
