"""What the cluster offers, detected once per session: nodes, version, DNS, IngressClasses, cert-manager."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .at_once import at_once
from .kube import Kube

CERT_MANAGER_CRD = ("cert-manager.io/v1", "Certificate")


@dataclass(frozen=True)
class NodeInfo:
    name: str
    internal_ip: str | None
    pod_cidrs: tuple[str, ...]
    schedulable: bool
    ready: bool
    cni_conf_dir: str | None = None  # from the node annotation netconform.io/cni-conf-dir, if any
    cni_bin_dir: str | None = None
    local: bool = False  # a node of netconform's own local cluster
    provider_id: str | None = None


@dataclass(frozen=True)
class IngressClassInfo:
    name: str
    controller: str
    default: bool


@dataclass(frozen=True)
class LoadBalancerInfo:
    """What the API says about LoadBalancer Services: an implementation found, none at all, or cannot tell."""

    implementation: str | None = None  # e.g. "MetalLB", "cloud provider aws"
    absent: str | None = None  # why the cluster surely has none; None when it has one or cannot tell


@dataclass(frozen=True)
class ClusterInfo:
    provider: str
    server: str
    context: str | None
    version: str
    nodes: tuple[NodeInfo, ...]
    dns_service_ip: str | None
    dns_service: str | None
    cluster_domain: str
    ingress_classes: tuple[IngressClassInfo, ...]
    cert_manager: bool
    loadbalancer: LoadBalancerInfo = field(default_factory=LoadBalancerInfo)
    cni_config: dict[str, Any] = field(default_factory=dict)

    @property
    def local_cluster(self) -> bool:
        """netconform's own cluster: the runner shares the host, so node addresses are reachable from it."""
        return bool(self.nodes) and all(n.local for n in self.nodes)

    @property
    def schedulable_nodes(self) -> tuple[NodeInfo, ...]:
        return tuple(n for n in self.nodes if n.schedulable and n.ready)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def info_from_dict(doc: dict[str, Any]) -> ClusterInfo:
    """The inverse of `dataclasses.asdict(ClusterInfo)`: how xdist workers receive the controller's detection."""
    d = dict(doc)
    d["nodes"] = tuple(NodeInfo(**{**n, "pod_cidrs": tuple(n["pod_cidrs"])}) for n in d["nodes"])
    d["ingress_classes"] = tuple(IngressClassInfo(**c) for c in d["ingress_classes"])
    d["loadbalancer"] = LoadBalancerInfo(**d["loadbalancer"])
    return ClusterInfo(**d)


def node_info(obj: dict[str, Any]) -> NodeInfo:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ip = next((a["address"] for a in status.get("addresses") or [] if a["type"] == "InternalIP"), None)
    cidrs = tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    taints = spec.get("taints") or []
    no_schedule = any(t.get("effect") in ("NoSchedule", "NoExecute") for t in taints)
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    ann = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    return NodeInfo(
        meta["name"],
        ip,
        cidrs,
        not spec.get("unschedulable") and not no_schedule,
        ready,
        ann.get("netconform.io/cni-conf-dir"),
        ann.get("netconform.io/cni-bin-dir"),
        labels.get("netconform.io/local-cluster") == "true",
        spec.get("providerID") or None,
    )


def ingress_class_info(obj: dict[str, Any]) -> IngressClassInfo:
    ann = obj["metadata"].get("annotations") or {}
    return IngressClassInfo(
        obj["metadata"]["name"],
        obj["spec"].get("controller", ""),
        ann.get("ingressclass.kubernetes.io/is-default-class") == "true",
    )


def pick_ingress_class(classes: tuple[IngressClassInfo, ...], wanted: str | None) -> IngressClassInfo | None:
    """The class to test: the one asked for, else the default one, else the only one."""
    if wanted:
        return next((c for c in classes if c.name == wanted), None)
    defaults = [c for c in classes if c.default]
    if len(defaults) == 1:
        return defaults[0]
    return classes[0] if len(classes) == 1 else None


#: API groups whose presence means a LoadBalancer implementation is installed.
LB_API_GROUPS = {"metallb.io": "MetalLB", "purelb.io": "PureLB", "loxilb.io": "LoxiLB"}
#: providerID schemes of clouds whose cloud controller provisions load balancers.
CLOUD_SCHEMES = (
    "aws",
    "gce",
    "azure",
    "openstack",
    "digitalocean",
    "linode",
    "hcloud",
    "oci",
    "ibm",
    "alicloud",
    "vsphere",
    "exoscale",
    "scaleway",
    "ovh",
    "upcloud",
    "vultr",
    "civo",
)


def loadbalancer_info(nodes: tuple[NodeInfo, ...], api_groups: set[str], cilium_lb_pools: bool) -> LoadBalancerInfo:
    """Find a LoadBalancer implementation from the API alone (no Service is created to find out)."""
    for group, name in LB_API_GROUPS.items():
        if group in api_groups:
            return LoadBalancerInfo(implementation=name)
    if cilium_lb_pools:
        return LoadBalancerInfo(implementation="Cilium LB IPAM")
    schemes = {n.provider_id.split(":", 1)[0] for n in nodes if n.provider_id}
    clouds = sorted(s for s in schemes if s in CLOUD_SCHEMES)
    if clouds:
        return LoadBalancerInfo(implementation=f"cloud provider {clouds[0]}")
    if nodes and all(n.local for n in nodes):
        return LoadBalancerInfo(absent="netconform's local cluster runs no LoadBalancer implementation")
    return LoadBalancerInfo()


def detect(kube: Kube, provider: str) -> ClusterInfo:
    """What the cluster offers, from the API. The requests do not depend on each other but for the kubelet's
    configuration (the cluster domain, read from the first node): made at once. With the API server 100 ms away the
    controller's start, the rights check beside this, took 1.2 s instead of 2.5 s; what is left one after another is
    the discovery of each API group (one lookup at a time: netconform.kube)."""
    asks: list[Callable[[], Any]] = [
        kube.version,
        lambda: kube.list_objects("v1", "Node"),
        lambda: kube.get("v1", "Service", "kube-dns", "kube-system"),
        kube.api_groups,
        lambda: kube.list_objects("networking.k8s.io/v1", "IngressClass"),
        lambda: kube.has_kind(*CERT_MANAGER_CRD),
    ]
    version, node_docs, dns, groups, class_docs, cert_manager = at_once(lambda ask: ask(), asks)
    nodes = tuple(node_info(n) for n in node_docs)
    domain = "cluster.local"
    for n in nodes[:1]:
        domain = _kubelet_cluster_domain(kube, n.name) or domain
    return ClusterInfo(
        provider=provider,
        server=kube.api.configuration.host,
        context=kube.context,
        version=version,
        nodes=nodes,
        dns_service_ip=(dns or {}).get("spec", {}).get("clusterIP"),
        dns_service="kube-system/kube-dns" if dns else None,
        cluster_domain=domain,
        ingress_classes=tuple(ingress_class_info(c) for c in class_docs),
        cert_manager=cert_manager,
        loadbalancer=loadbalancer_info(
            nodes, groups, "cilium.io" in groups and kube.has_kind("cilium.io/v2alpha1", "CiliumLoadBalancerIPPool")
        ),
    )


def _kubelet_cluster_domain(kube: Kube, node: str) -> str | None:
    """Read kubelet's clusterDomain through the node proxy, when the credentials allow it."""
    try:
        return json.loads(kube.node_proxy(node, "configz"))["kubeletconfig"].get("clusterDomain")
    except Exception:  # no nodes/proxy permission, or a kubelet that does not serve configz
        return None
