"""The local cluster's fixed shape: names and address ranges, all on a bridge this cluster creates."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from . import paths

BRIDGE = "ncbr0"
NODE_UPLINK = "eth0"  # each node namespace's link to BRIDGE, the way to the host and the other nodes
INGRESS_DOMAIN = "netconform.test"  # the suite's default --ingress-domain
CLUSTER_DOMAIN = "cluster.local"
API_PORT = 6443
# TLS with client certificates both ways: any local user can connect to loopback, only the API server may talk.
ETCD_CLIENT = "https://127.0.0.1:23790"
ETCD_PEER = "https://127.0.0.1:23800"
INGRESS_HTTP_NODEPORT = 30080
INGRESS_HTTPS_NODEPORT = 30443
NODEPORT_RANGE = "30000-32767"
MAX_NODES = 4
HOST_CHAIN = "NETCONFORM-FWD"
RUN = Path("/run/netconform")  # sockets and containerd state (short paths, tmpfs)


@dataclass(frozen=True)
class Ranges:
    """The three address ranges the cluster takes on the host (`cluster up --node-subnet/--pod-cidr/--service-cidr`),
    and the fixed addresses inside them: the host (control plane) at .1 of the node subnet, node i at .(10+i), the
    LoadBalancer pool at .200-.239 (MetalLB, layer 2, on the node bridge); the API Service at .1 of the Service range,
    DNS at .10, the ingress controller at .80 (fixed, so CoreDNS and the ACME test DNS can answer test hosts with it).
    Each node gets a /24 of the pod range."""

    node_subnet: ipaddress.IPv4Network = ipaddress.IPv4Network("172.28.0.0/24")
    pod_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.244.0.0/16")
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.96.0.0/16")

    #: The `cluster up` option that chooses each range, for messages that say how to pick another.
    OPTIONS: ClassVar[dict[str, str]] = {
        "node_subnet": "--node-subnet",
        "pod_cidr": "--pod-cidr",
        "service_cidr": "--service-cidr",
    }

    @classmethod
    def parse(
        cls, node_subnet: str | None = None, pod_cidr: str | None = None, service_cidr: str | None = None
    ) -> Ranges:
        """From the options' text (None: the default); ValueError with one line naming the option otherwise."""
        given = {"node_subnet": node_subnet, "pod_cidr": pod_cidr, "service_cidr": service_cidr}
        values = {}
        for name, text in given.items():
            if text is None:
                continue
            try:
                values[name] = ipaddress.IPv4Network(text.strip())
            except ValueError as e:
                raise ValueError(f"{cls.OPTIONS[name]} {text!r} is not an IPv4 network in CIDR form ({e})") from None
        ranges = cls(**values)
        wrong = ranges.problems()
        if wrong:
            raise ValueError("; ".join(wrong))
        return ranges

    def problems(self) -> list[str]:
        found = []
        if self.node_subnet.prefixlen > 24:
            found.append(f"--node-subnet {self.node_subnet} is too small: it needs a /24 or larger (nodes, pool)")
        if self.pod_cidr.prefixlen > 24 - (MAX_NODES - 1).bit_length():
            found.append(f"--pod-cidr {self.pod_cidr} is too small: each of up to {MAX_NODES} nodes takes a /24")
        if not 12 <= self.service_cidr.prefixlen <= 24:
            found.append(f"--service-cidr {self.service_cidr} must be between a /12 and a /24 (the API server's limit)")
        named = list(self.named().items())
        for i, (a, net_a) in enumerate(named):
            for b, net_b in named[i + 1 :]:
                if net_a.overlaps(net_b):
                    found.append(f"{self.OPTIONS[a]} {net_a} overlaps {self.OPTIONS[b]} {net_b}")
        return found

    def named(self) -> dict[str, ipaddress.IPv4Network]:
        return {"node_subnet": self.node_subnet, "pod_cidr": self.pod_cidr, "service_cidr": self.service_cidr}

    def as_meta(self) -> dict[str, str]:
        return {name: str(net) for name, net in self.named().items()}

    @classmethod
    def from_meta(cls, meta: dict[str, object]) -> Ranges:
        """A cluster.json written before ranges could be chosen used the defaults."""
        return cls(**{k: ipaddress.IPv4Network(str(meta[k])) for k in cls.OPTIONS if k in meta})

    def _at(self, net: ipaddress.IPv4Network, offset: int) -> str:
        return str(net.network_address + offset)

    @property
    def host_ip(self) -> str:
        return self._at(self.node_subnet, 1)

    def node_ip(self, index: int) -> str:
        return self._at(self.node_subnet, 10 + index)

    @property
    def lb_pool(self) -> str:
        return f"{self._at(self.node_subnet, 200)}-{self._at(self.node_subnet, 239)}"

    @property
    def api_service_ip(self) -> str:
        return self._at(self.service_cidr, 1)

    @property
    def dns_service_ip(self) -> str:
        return self._at(self.service_cidr, 10)

    @property
    def ingress_service_ip(self) -> str:
        return self._at(self.service_cidr, 80)


DEFAULT_RANGES = Ranges()


@dataclass(frozen=True)
class Node:
    index: int  # 1-based
    ranges: Ranges = field(default=DEFAULT_RANGES, compare=False)

    @property
    def name(self) -> str:
        return f"nc-node-{self.index}"

    @property
    def netns(self) -> str:
        return self.name

    @property
    def ip(self) -> str:
        return self.ranges.node_ip(self.index)

    @property
    def host_veth(self) -> str:
        return f"ncv{self.index}"

    @property
    def dir(self) -> Path:
        return paths.STATE / "nodes" / self.name

    @property
    def run(self) -> Path:
        return RUN / self.name

    @property
    def containerd_sock(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        # Per node, because host-local IPAM's range is the node's own pod CIDR; in the node's own folder, not the
        # host's /etc/cni (the node is annotated with it, netconform.io/cni-conf-dir, for the CNI checks).
        return self.dir / "cni" / "net.d"

    @property
    def cgroup_root(self) -> str:
        return f"/{self.name}"


def nodes(count: int, ranges: Ranges = DEFAULT_RANGES) -> list[Node]:
    if not 1 <= count <= MAX_NODES:
        raise ValueError(f"--nodes must be between 1 and {MAX_NODES}, given: {count}")
    return [Node(i, ranges) for i in range(1, count + 1)]
