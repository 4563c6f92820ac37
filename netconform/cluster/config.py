"""The local cluster's fixed shape: names and address ranges, all on a bridge this cluster creates."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from . import paths

BRIDGE = "ncbr0"
NODE_SUBNET = ipaddress.ip_network("172.28.0.0/24")
HOST_IP = "172.28.0.1"  # the control plane's address, on the bridge
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
# LoadBalancer addresses (MetalLB, layer 2): on the node bridge, above the host (.1) and the nodes (.11-.14).
LB_POOL = "172.28.0.200-172.28.0.239"
INGRESS_SERVICE_IP = "10.96.0.80"  # fixed, so CoreDNS and the ACME test DNS can answer test hosts with it
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
class Node:
    index: int  # 1-based

    @property
    def name(self) -> str:
        return f"nc-node-{self.index}"

    @property
    def netns(self) -> str:
        return self.name

    @property
    def ip(self) -> str:
        return str(NODE_SUBNET.network_address + 10 + self.index)

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
        # Per node, because host-local IPAM's range is the node's own pod CIDR.
        return Path("/etc/cni/net.d") / "netconform" / self.name

    @property
    def cgroup_root(self) -> str:
        return f"/{self.name}"


def nodes(count: int) -> list[Node]:
    if not 1 <= count <= MAX_NODES:
        raise ValueError(f"--nodes must be between 1 and {MAX_NODES}, given: {count}")
    return [Node(i) for i in range(1, count + 1)]
