"""The cluster's own network: one bridge on the host, one network namespace per node, routes between pod CIDRs.

Nothing here routes traffic out of the machine: a host FORWARD chain accepts bridge-to-bridge traffic and drops
anything else that enters or leaves through the cluster's bridge.
"""

from __future__ import annotations

import subprocess

from . import config
from .config import Node
from .procs import run


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    return run(cmd, check=check)


def set_sysctls(settings: dict[str, str], netns: str) -> None:
    """Write kernel settings inside one node's network namespace (one process for all of them)."""
    script = "; ".join(f"echo {value} > /proc/sys/{key.replace('.', '/')}" for key, value in settings.items())
    run(["sh", "-ec", script], netns=netns)


def create_bridge(ranges: config.Ranges) -> None:
    _ip("link", "add", config.BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{ranges.host_ip}/{ranges.node_subnet.prefixlen}", "dev", config.BRIDGE)
    _ip("link", "set", config.BRIDGE, "up")
    # The bridge is the nodes' L2 segment: frames between node ports pass; the host routes nothing for them
    # (no fallback router between pod CIDRs, as on a real flat network) and nothing leaves through other links.
    run(["iptables", "-w", "-N", config.HOST_CHAIN])
    run(
        [
            "iptables",
            "-w",
            "-A",
            config.HOST_CHAIN,
            "-i",
            config.BRIDGE,
            "-o",
            config.BRIDGE,
            "-m",
            "physdev",
            "--physdev-is-bridged",
            "-j",
            "ACCEPT",
        ]
    )
    run(["iptables", "-w", "-A", config.HOST_CHAIN, "-i", config.BRIDGE, "-j", "DROP"])
    run(["iptables", "-w", "-A", config.HOST_CHAIN, "-o", config.BRIDGE, "-j", "DROP"])
    run(["iptables", "-w", "-I", "FORWARD", "1", "-j", config.HOST_CHAIN])


def create_node_netns(node: Node) -> None:
    _ip("netns", "add", node.netns)
    _ip("link", "add", node.host_veth, "type", "veth", "peer", "name", config.NODE_UPLINK, "netns", node.netns)
    _ip("link", "set", node.host_veth, "master", config.BRIDGE, "up")
    _ip("addr", "add", f"{node.ip}/{node.ranges.node_subnet.prefixlen}", "dev", config.NODE_UPLINK, netns=node.netns)
    _ip("link", "set", "lo", "up", netns=node.netns)
    _ip("link", "set", config.NODE_UPLINK, "up", netns=node.netns)
    _ip("route", "add", "default", "via", node.ranges.host_ip, netns=node.netns)
    set_sysctls(
        {
            "net.ipv4.ip_forward": "1",
            "net.bridge.bridge-nf-call-iptables": "1",
            # The policy engine answers a denied connection with an ICMP port unreachable; the kernel's
            # per-destination ICMP rate limit (1/s after a burst of 6) turned most of them into silence, so a
            # probe round with any denied cell waited out the probe timeout (0.5 s) instead of taking 0.1 s
            # (measured). These are per namespace: the host keeps its own.
            "net.ipv4.icmp_ratelimit": "0",
            "net.ipv4.icmp_msgs_per_sec": "100000",
            "net.ipv4.icmp_msgs_burst": "10000",
        },
        node.netns,
    )


def route_pod_cidrs(nodes: list[Node], pod_cidrs: dict[str, str]) -> None:
    """Carry each node's pod CIDR to that node, in every other node and on the host (as kindnet does). On the host a
    route is added, never replaced: the preflight made sure none is there, and one that appeared since is not ours to
    overwrite (adding it then fails, naming it)."""
    for target in nodes:
        cidr = pod_cidrs[target.name]
        _ip("route", "add", cidr, "via", target.ip, "dev", config.BRIDGE)
        for other in nodes:
            if other != target:
                _ip("route", "replace", cidr, "via", target.ip, netns=other.netns)


def existing_netns() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def teardown() -> list[str]:
    """Remove every namespace, veth, bridge, route and host rule of the cluster; return what was removed."""
    removed = []
    for ns in existing_netns():
        if ns.startswith("nc-node-"):
            _ip("netns", "del", ns, check=False)
            removed.append(f"netns {ns}")
    links = run(["ip", "-o", "link", "show"], check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name == config.BRIDGE or (name.startswith("ncv") and name[3:].isdigit()):
            _ip("link", "del", name, check=False)
            removed.append(f"link {name}")
    while run(["iptables", "-w", "-D", "FORWARD", "-j", config.HOST_CHAIN], check=False).returncode == 0:
        removed.append(f"FORWARD jump to {config.HOST_CHAIN}")
    if run(["iptables", "-w", "-F", config.HOST_CHAIN], check=False).returncode == 0:
        run(["iptables", "-w", "-X", config.HOST_CHAIN], check=False)
        removed.append(f"chain {config.HOST_CHAIN}")
    return removed
