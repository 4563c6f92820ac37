"""`netconform cluster down` removes every process, namespace, link, chain and mount the cluster created."""

from __future__ import annotations

import subprocess
from pathlib import Path

from netconform.cluster import config, paths, procs


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
