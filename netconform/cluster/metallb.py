"""The local cluster's LoadBalancer implementation: MetalLB in layer 2 mode. Its controller assigns each
LoadBalancer Service an address from a pool carved out of the node bridge's subnet; a speaker on every node (a
host-network pod, so in the node's network namespace) answers ARP for the addresses its node announces, so the
host reaches them over the bridge and kube-proxy on that node takes the traffic to a backend.

No webhook (its certificates and Service are not needed to serve addresses) and no memberlist (every node runs a
speaker); the CRDs come from the module's own `config/crd/bases` (manifests: addons/metallb.yaml).
"""

from __future__ import annotations

from . import build, images

NAMESPACE = "metallb-system"
CONTROLLER = "controller"  # its Deployment
SPEAKER = "speaker"  # its DaemonSet


def crds() -> str:
    """MetalLB's CRDs as its module ships them."""
    folder = images.module_dir("go.universe.tf/metallb", build.METALLB_VERSION) / "config" / "crd" / "bases"
    return "\n---\n".join(f.read_text() for f in sorted(folder.glob("metallb.io_*.yaml")))
