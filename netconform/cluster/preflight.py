"""Before anything is built or started: can the local cluster run on this host without touching what is already
there? Each problem is one line that names it and what to do. The checks of host facts (routes, addresses, cgroup
mounts: cgroups.py) are pure functions of what the host reports, unit-tested with made-up tables."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import cgroups, config, hostsys, paths, procs

#: What each of the cluster's ranges (config.Ranges) is for.
RANGE_USE = {
    "node_subnet": "the node bridge and LoadBalancer pool",
    "pod_cidr": "pod addresses",
    "service_cidr": "Service addresses",
}
#: Ports the control plane listens on in the host's own network namespace.
PORTS = {
    config.API_PORT: "kube-apiserver",
    10257: "kube-controller-manager",
    10259: "kube-scheduler",
    23790: "etcd (clients)",
    23800: "etcd (peers)",
}


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or a prefix
    dev: str


@dataclass(frozen=True)
class Address:
    prefix: str  # address with its prefix length, "192.168.1.5/24"
    dev: str


@dataclass(frozen=True)
class Overlap:
    taken: str  # "route 10.0.0.0/8 dev vpn0" or "address 172.28.0.7/24 on docker1"
    range: str  # the cluster's range it overlaps
    name: str  # which of config.Ranges

    def __str__(self) -> str:
        return f"{self.taken} overlaps {self.range} ({RANGE_USE[self.name]})"

    @property
    def advice(self) -> str:
        return f"{self}: remove it, or choose another range with `cluster up {config.Ranges.OPTIONS[self.name]}`"


def overlaps(
    routes: list[Route],
    addresses: list[Address],
    ranges: config.Ranges = config.DEFAULT_RANGES,
    ours: str = config.BRIDGE,
) -> list[Overlap]:
    """Every existing route or address (not on our own bridge) inside or around a range the cluster needs."""
    taken: list[tuple[str, str]] = [(r.dst, f"route {r.dst} dev {r.dev}") for r in routes if r.dev != ours]
    taken += [(a.prefix, f"address {a.prefix} on {a.dev}") for a in addresses if a.dev != ours]
    found = []
    for prefix, what_it_is in taken:
        try:
            net = ipaddress.ip_interface(prefix).network  # a route's prefix or an address with its length
        except ValueError:
            continue  # "default" and other non-prefixes
        for name, rng in ranges.named().items():
            if net.version == rng.version and net.overlaps(rng):
                found.append(Overlap(what_it_is, str(rng), name))
    return found


def host_routes() -> list[Route]:
    out = procs.run(["ip", "-j", "route", "show", "table", "all"], check=False).stdout or "[]"
    return [Route(r.get("dst", ""), r.get("dev", "")) for r in json.loads(out) if r.get("type", "unicast") == "unicast"]


def host_addresses() -> list[Address]:
    out = procs.run(["ip", "-j", "addr", "show"], check=False).stdout or "[]"
    return [
        Address(f"{a['local']}/{a['prefixlen']}", link.get("ifname", ""))
        for link in json.loads(out)
        for a in link.get("addr_info", [])
        if a.get("family") == "inet"
    ]


def busy_ports(ports: dict[int, str] = PORTS) -> list[str]:
    """Ports someone already listens on (tried by binding them on every address)."""
    found = []
    for port, what in sorted(ports.items()):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # As the servers bind: connections of a cluster just taken down (TIME_WAIT) do not count, a listener does.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    found.append(f"port {port} ({what}) is in use: `ss -ltnp 'sport = :{port}'` tells by whom")
    return found


def kernel_problems() -> list[str]:
    found = []
    if not Path("/proc/sys/net/bridge").exists():
        load = subprocess.run(["modprobe", "br_netfilter"], capture_output=True, text=True, timeout=30)
        if load.returncode != 0 or not Path("/proc/sys/net/bridge").exists():
            found.append("bridge netfilter (br_netfilter) is not available: `modprobe br_netfilter` failed")
    for module, probe in (("veth", ["ip", "link", "help", "veth"]), ("ipset", ["ipset", "version"])):
        try:
            ok = subprocess.run(probe, capture_output=True, timeout=30).returncode in (0, 255)
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if not ok:
            found.append(f"{module} is not available (`{' '.join(probe)}` failed)")
    return found


#: The kubelet evicts pods when less than this share of its disk is free (node.kubelet_config's evictionHard).
EVICTION_FREE = 0.10


def disk_problems(folder: Path, need: float = EVICTION_FREE) -> list[str]:
    """The disk the nodes write to (state, images) must have more free than the kubelet's eviction threshold."""
    while not folder.exists():
        folder = folder.parent
    st = os.statvfs(folder)
    free = st.f_bavail / st.f_blocks if st.f_blocks else 0.0
    if free <= need:
        gib = st.f_bavail * st.f_frsize / 2**30
        return [
            f"only {free:.0%} ({gib:.1f} GiB) of the disk holding {folder} is free; the nodes' kubelets evict every "
            f"pod below {need:.0%}: free some space first"
        ]
    return []


def device_plugin_problems(folder: Path | None = None) -> list[str]:
    """Someone serving in the kubelets' fixed device-plugin folder (a kubelet of the host's own, its device
    plugins): every kubelet of the local cluster removes the sockets it finds there when it starts
    (pkg/kubelet/cm/devicemanager), which would cut them off. A socket nobody answers on is a stale one."""
    folder = folder or hostsys.DEVICE_PLUGINS
    live = []
    for sock in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not sock.is_socket():
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            try:
                s.connect(str(sock))
            except OSError:
                continue
        live.append(sock.name)
    if not live:
        return []
    return [
        f"{folder} has sockets in use ({', '.join(live)}): a kubelet or device plugin of this host serves there, and "
        "each kubelet of the local cluster removes the sockets it finds there when it starts; stop them first"
    ]


def notes() -> list[str]:
    """What the user should know about this host before relying on the cluster (none stops it)."""
    return cgroups.notes(cgroups.host())


def problems(ranges: config.Ranges = config.DEFAULT_RANGES, ports: bool = True) -> list[str]:
    """Everything that stops the local cluster on this host, each with what to do; empty when it can run.
    `ports=False` leaves out what a running local cluster holds itself: its ports and its kubelets' socket."""
    if os.geteuid() != 0:
        return ["the local cluster needs root (network namespaces, routes, cgroups, mounts)"]
    found = cgroups.problems(cgroups.host())
    found += kernel_problems()
    found += [o.advice for o in overlaps(host_routes(), host_addresses(), ranges)]
    found += busy_ports() + device_plugin_problems() if ports else []
    found += disk_problems(paths.STATE)
    return found
