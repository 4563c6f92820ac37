"""`netconform cluster down` removes every process, namespace, link, chain and mount the cluster created, and
nothing else: a process that only names the cluster's paths lives on, and the host's kernel settings are as before
`up`, the kubelets' fixed folder included. Then, on the empty host: `up` refuses a conflicting route without
touching any, and an interrupted `up` leaves nothing behind."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import kubectl
from netconform.cluster import config, hostsys, paths, procs
from netconform.cluster.node import LEGACY_CNI_CONF


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
    kubeconfig; the kernel settings the kubelets changed are back to what `up` found; and the fixed host folders
    the nodes made outside their own (device plugins, shim sockets, CNI results, container log links) are gone."""
    saved = json.loads(hostsys.snapshot_path().read_text())
    created = hostsys.created()
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
    assert not [str(f) for f in created.values() if f.exists()], f"{created}: made by the nodes, still there"


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
    # runc keeps each container's state under the node's own run folder, not in the host's /run/containerd/runc.
    ours = [str(f) for f in Path("/run/containerd/runc").glob("*/*/state.json") if str(config.RUN) in f.read_text()]
    assert not ours, f"{len(ours)} runc states of the cluster's containers left on the host, e.g. {ours[:3]}"
    assert not LEGACY_CNI_CONF.exists(), "the nodes' CNI configuration belongs in their own folders"
    # Nor the CNI results of its pods or the kubelets' links to its container logs, in the host's fixed folders.
    certain = [folder for folder in hostsys.fixed_folders() if folder.certain and folder.path.is_dir()]
    left = [f for folder in certain for f in folder.path.iterdir() if folder.theirs(f)]
    assert not left, f"{len(left)} files of the cluster left in the host's fixed folders, e.g. {left[:3]}"
    mounts = Path("/proc/self/mounts").read_text()
    assert str(paths.STATE) not in mounts and str(config.RUN) not in mounts
    assert not paths.STATE.exists() and not list(Path("/sys/fs/cgroup/cpu").glob("nc-node-*"))
    again = subprocess.run(["netconform", "cluster", "down"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, "down is not safe to run twice"


def routes() -> str:
    """Every IPv4 route in every table (the cluster's ranges are IPv4; the kernel adds IPv6 link-local routes to a
    new link on its own time)."""
    return subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, timeout=30
    ).stdout


@pytest.fixture
def conflicting_bridge() -> Iterator[str]:
    """A bridge of someone else's with an address (and so a route) inside the cluster's default pod range."""
    subprocess.run(["ip", "link", "add", "ncdummy9", "type", "bridge"], check=True, timeout=30)
    try:
        subprocess.run(["ip", "addr", "add", "10.244.250.1/24", "dev", "ncdummy9"], check=True, timeout=30)
        subprocess.run(["ip", "link", "set", "ncdummy9", "up"], check=True, timeout=30)
        yield "ncdummy9"
    finally:
        subprocess.run(["ip", "link", "del", "ncdummy9"], timeout=30)


def test_up_refuses_a_route_that_overlaps_its_ranges_and_touches_no_route(conflicting_bridge):
    """A route in the pod range already on the host: `up` names it and the option that avoids it, and stops before
    building or starting anything."""
    before = routes()
    up = subprocess.run(["netconform", "cluster", "up", "--nodes", "2"], capture_output=True, text=True, timeout=120)
    assert up.returncode == 2, up.stderr
    assert "10.244.250.0/24 dev ncdummy9 overlaps 10.244.0.0/16 (pod addresses)" in up.stderr, up.stderr
    assert "choose another range with `cluster up --pod-cidr`" in up.stderr, up.stderr
    assert "nothing was built or started" in up.stderr
    assert routes() == before and not nothing_left()


#: Ranges clear of the conflicting bridge, and of the defaults in every place: each fixed address moves with them.
OTHER_RANGES = {"--node-subnet": "172.29.8.0/24", "--pod-cidr": "10.248.0.0/16", "--service-cidr": "10.112.0.0/16"}


def test_up_in_ranges_the_user_chose_passes_the_suite_beside_the_conflict(conflicting_bridge, suite_on):
    """The way out the preflight names: `up` with other ranges boots beside the conflicting route, every address the
    cluster fixes (API server, nodes, DNS, ingress, LoadBalancer pool, pod CIDRs) is in the chosen ranges, the whole
    suite passes on it (1 node: only the node-pair checks do not apply), and `down` leaves the routing table as it
    found it. A proxy in the caller's environment reaches no component."""
    before = routes()
    options = [x for pair in OTHER_RANGES.items() for x in pair]
    # A proxy in the environment that goes nowhere: a component honouring it could not reach the API server.
    proxy = {v: "http://127.0.0.1:9" for v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    up = subprocess.run(
        ["netconform", "cluster", "up", "--nodes", "1", *options],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **proxy},
    )
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        for name in ("kube-apiserver", "kubelet-nc-node-1", "kube-router-nc-node-1"):
            pid = procs.running(name)
            assert pid, f"{name} is not running"
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert not [e for e in environ if e.lower().startswith((b"http_proxy=", b"https_proxy="))], name
        kc = str(paths.KUBECONFIG)
        node = json.loads(kubectl(kc, "get", "node", "nc-node-1", "-o", "json").stdout)
        assert node["spec"]["podCIDR"] == "10.248.0.0/24"
        assert {a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"} == {"172.29.8.11"}
        services = {
            (s["metadata"]["namespace"], s["metadata"]["name"]): s["spec"]["clusterIP"]
            for s in json.loads(kubectl(kc, "get", "services", "-A", "-o", "json").stdout)["items"]
        }
        assert services[("default", "kubernetes")] == "10.112.0.1"
        assert services[("kube-system", "kube-dns")] == "10.112.0.10"
        assert services[("netconform-ingress", "traefik")] == "10.112.0.80"
        pools = json.loads(kubectl(kc, "-n", "metallb-system", "get", "ipaddresspools", "-o", "json").stdout)
        assert [p["spec"]["addresses"] for p in pools["items"]] == [["172.29.8.200-172.29.8.239"]]
        assert "https://172.29.8.1:6443" in paths.KUBECONFIG.read_text()
        assert "10.248.0.0/24 via 172.29.8.11 dev ncbr0" in routes()
        run = suite_on(kube_config=kc)
        assert not run.ids("failed") and not run.ids("error"), run.output
        skipped = {t: run.messages[t] for t in run.ids("skipped")}
        assert all("needs at least 2 schedulable Ready nodes" in m for m in skipped.values()), skipped
        lb = [t for t in run.ids("passed") if "loadbalancer" in t]
        assert lb and run.rc == 0, run.output
    finally:
        down = subprocess.run(["netconform", "cluster", "down"], capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stderr
    assert routes() == before and not nothing_left(), nothing_left()


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
