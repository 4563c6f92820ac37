"""One node: containerd, kubelet and kube-proxy in the node's network namespace, with its CNI config and cgroups."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from . import cgroups, config, hostsys, pki, procs
from .config import Node


def containerd_config(node: Node, pause_image: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{node.dir / "containerd"}"
state = "{node.run / "containerd"}"
[grpc]
  address = "{node.containerd_sock}"
[debug]
  address = "{node.run / "containerd-debug.sock"}"
[ttrpc]
  address = "{node.run / "containerd-ttrpc.sock"}"
[{cri}]
  sandbox_image = "{pause_image}"
  # No CAP_SYS_RESOURCE here: without this every pod sandbox fails.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # Pod network namespaces under our state, so `down` finds and removes exactly ours.
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        # runc's state under ours: by default the shims give runc /run/containerd/runc, a host folder, where every
        # container a node ever ran left its state.json (2574 of them on this machine before this line).
        Root = "{node.run / "runc"}"
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{node.cni_conf_dir}"
"""


def cni_conflist(node: Node, pod_cidr: str) -> dict[str, object]:
    return {
        "cniVersion": "0.4.0",
        "name": "netconform",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node.dir / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write_cni(node: Node, pod_cidr: str) -> Path:
    node.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    f = node.cni_conf_dir / "10-netconform.conflist"
    f.write_text(json.dumps(cni_conflist(node, pod_cidr), indent=2))
    return f


def kubelet_config(node: Node, serving: pki.Pair, ca: Path, resolv_conf: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "port": 10250,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving.cert),
        "tlsPrivateKeyFile": str(serving.key),
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{node.containerd_sock}",
        "clusterDNS": [node.ranges.dns_service_ip],
        "clusterDomain": config.CLUSTER_DOMAIN,
        "resolvConf": str(resolv_conf),
        # The kubelet's own defaults: a node shares the host's disk, which must not fill up. Image GC is on; the
        # images it could collect (no registry to pull them again) are kept in use by the image-keeper add-on.
        "imageGCHighThresholdPercent": 85,
        "imageGCLowThresholdPercent": 80,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "10%",
            "nodefs.inodesFree": "5%",
            "imagefs.available": "10%",  # the default is 15%; images and pods share one disk here
        },
        "podLogsDir": str(node.dir / "pod-logs"),
        "serializeImagePulls": False,
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
    }


def kube_proxy_config(node: Node, kubeconfig: Path) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node.name,
        "clusterCIDR": str(node.ranges.pod_cidr),
        "bindAddress": "0.0.0.0",
        "healthzBindAddress": "0.0.0.0:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Leave conntrack sysctls alone: they are not ours to change.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "oomScoreAdj": 0,
    }


def start_containerd(node: Node, pause_image: str) -> None:
    for d in (node.dir, node.run):
        d.mkdir(parents=True, exist_ok=True)
    cfg = node.dir / "containerd.toml"
    cfg.write_text(containerd_config(node, pause_image))
    procs.start(f"containerd-{node.name}", ["containerd", "--config", str(cfg)], netns=node.netns)


def wait_containerd(node: Node, deadline_s: float = 30) -> None:
    procs.wait_ready(
        f"containerd-{node.name}",
        lambda: (
            node.containerd_sock.exists()
            and procs.run(["ctr", "--address", str(node.containerd_sock), "version"], check=False).returncode == 0
        ),
        deadline_s,
        f"socket {node.containerd_sock} not answering",
        interval_s=0.1,
    )


def import_images(node: Node, archive: Path) -> None:
    procs.run(["ctr", "--address", str(node.containerd_sock), "-n", "k8s.io", "images", "import", str(archive)])


def start_kubelet(node: Node, bins: Path, kubeconfig: Path, cfg: dict[str, object]) -> None:
    """Start the node's kubelet and return once it has bound its device-plugin socket (see there)."""
    cgroups.prepare_node(cgroups.host(), node.name)
    f = node.dir / "kubelet.yaml"
    f.write_text(yaml.safe_dump(cfg))
    (node.dir / "pod-logs").mkdir(parents=True, exist_ok=True)
    before = _socket_identity()
    procs.start(
        f"kubelet-{node.name}",
        [
            str(bins / "kubelet"),
            f"--config={f}",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node.name}",
            f"--node-ip={node.ip}",
            f"--root-dir={node.dir / 'kubelet'}",
            "--v=1",
            "--node-labels=netconform.io/local-cluster=true",
        ],
        netns=node.netns,
    )
    _wait_device_plugin_socket(f"kubelet-{node.name}", before)


#: How long a kubelet may take from its start to its device-plugin socket (measured here: 0.43 s).
KUBELET_SOCKET_S = 60.0


def _socket_identity() -> tuple[int, int] | None:
    """The device-plugin socket file now (inode, change time), None when there is none."""
    try:
        st = hostsys.DEVICE_PLUGIN_SOCKET.stat()
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns


def _wait_device_plugin_socket(name: str, before: tuple[int, int] | None) -> None:
    """Until the kubelet just started has made its device-plugin socket. Every kubelet removes the socket it finds
    there and binds its own at the same fixed path (hostsys.DEVICE_PLUGIN_SOCKET): two doing it at once, one binds
    between the other's removal and its bind, which then fails ("bind: address already in use") and that kubelet
    exits (seen in CI with 2 nodes). One after the other, each binds in turn; the earlier ones keep serving on their
    unlinked sockets, which nothing dials (the local cluster has no device plugins)."""
    procs.wait_ready(
        name,
        lambda: _socket_identity() not in (None, before),
        KUBELET_SOCKET_S,
        f"no new {hostsys.DEVICE_PLUGIN_SOCKET}",
        interval_s=0.05,
    )


def start_kube_proxy(node: Node, bins: Path, kubeconfig: Path) -> None:
    f = node.dir / "kube-proxy.yaml"
    f.write_text(yaml.safe_dump(kube_proxy_config(node, kubeconfig)))
    procs.start(f"kube-proxy-{node.name}", [str(bins / "kube-proxy"), f"--config={f}", "--v=1"], netns=node.netns)


#: kube-router's CPU priority. v2.1.0 rewrites every policy and pod chain of its node on each pod, namespace or
#: policy event, coalescing only the events that arrive during a sync. At an equal share of 2 cores shared with the
#: rest of the cluster and the suite it resynced back to back for the whole run (22% of the run's CPU); at nice 10
#: each sync takes longer and coalesces more events. Interleaved on the 2-node cluster (`suite_cpu.sh` per run,
#: 4 rounds): nice 0 wall 38.9/35.8/40.8/35.7 s, CPU 72/66/76/66 s; nice 10 30.0/31.2/33.5/30.6 s, CPU 55/57/61/56 s;
#: all 121 checks passed in each, the NetworkPolicy checks included. On fresh clusters (`benchmarks/suite.sh 3 2`,
#: then `3 4`): 2 nodes 35.0 -> 32.9 s, 4 nodes 51.1 -> 40.1 s; kube-router 6.8 instead of 15.3 CPU-s per 2-node run.
POLICY_ENGINE_NICE = 10


def start_network_policy(node: Node, bins: Path, kubeconfig: Path) -> None:
    """kube-router's NetworkPolicy controller alone (no routing, no service proxy, no CNI config), in the node's
    network namespace: its iptables chains and ipsets live there and go with the namespace at `down`. At a lower
    CPU priority than the rest of the cluster (POLICY_ENGINE_NICE)."""
    procs.start(
        f"kube-router-{node.name}",
        [
            str(bins / "kube-router"),
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            "--enable-cni=false",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node.name}",
            f"--service-cluster-ip-range={node.ranges.service_cidr}",
            f"--service-node-port-range={config.NODEPORT_RANGE}",
        ],
        netns=node.netns,
        nice=POLICY_ENGINE_NICE,
    )


#: Where a cluster of netconform before 2026-12-04 kept its nodes' CNI configuration (now in each node's folder).
LEGACY_CNI_CONF = Path("/etc/cni/net.d/netconform")


def remove_state(node_name: str) -> None:
    """What a cluster of an earlier netconform kept outside its state folder for this node."""
    shutil.rmtree(LEGACY_CNI_CONF / node_name, ignore_errors=True)
    try:
        LEGACY_CNI_CONF.rmdir()  # only if empty
    except OSError:
        pass
