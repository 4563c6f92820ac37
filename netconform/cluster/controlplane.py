"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler as host processes on the cluster bridge."""

from __future__ import annotations

from pathlib import Path

from . import config, files, paths, procs
from .pki import ClusterPKI


def start_etcd(bins: Path, pki: ClusterPKI) -> None:
    """etcd serving TLS on loopback and accepting only clients with a certificate of its own CA (the API server):
    without one, a local user could write to it and so become cluster-admin, and root through a privileged pod."""
    data = paths.STATE / "etcd"
    files.private_dir(data)
    tls = [
        f"--cert-file={pki.etcd_server.cert}",
        f"--key-file={pki.etcd_server.key}",
        f"--trusted-ca-file={pki.etcd_ca.cert}",
        "--client-cert-auth",
        f"--peer-cert-file={pki.etcd_server.cert}",
        f"--peer-key-file={pki.etcd_server.key}",
        f"--peer-trusted-ca-file={pki.etcd_ca.cert}",
        "--peer-client-cert-auth",
    ]
    procs.start(
        "etcd",
        [
            str(bins / "etcd"),
            "--name=netconform",
            f"--data-dir={data}",
            f"--listen-client-urls={config.ETCD_CLIENT}",
            f"--advertise-client-urls={config.ETCD_CLIENT}",
            f"--listen-peer-urls={config.ETCD_PEER}",
            f"--initial-advertise-peer-urls={config.ETCD_PEER}",
            f"--initial-cluster=netconform={config.ETCD_PEER}",
            "--log-level=warn",
            "--unsafe-no-fsync",  # a throwaway test cluster: durability is not worth the fsync latency
            *tls,
        ],
    )


def start_apiserver(bins: Path, pki: ClusterPKI, ranges: config.Ranges) -> None:
    p = pki
    procs.start(
        "kube-apiserver",
        [
            str(bins / "kube-apiserver"),
            f"--etcd-servers={config.ETCD_CLIENT}",
            f"--etcd-cafile={p.etcd_ca.cert}",
            f"--etcd-certfile={p.etcd_client.cert}",
            f"--etcd-keyfile={p.etcd_client.key}",
            f"--bind-address={ranges.host_ip}",
            f"--advertise-address={ranges.host_ip}",
            f"--secure-port={config.API_PORT}",
            f"--client-ca-file={p.ca.cert}",
            f"--tls-cert-file={p.apiserver.cert}",
            f"--tls-private-key-file={p.apiserver.key}",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={ranges.service_cidr}",
            f"--service-node-port-range={config.NODEPORT_RANGE}",
            f"--kubelet-client-certificate={p.apiserver_kubelet_client.cert}",
            f"--kubelet-client-key={p.apiserver_kubelet_client.key}",
            f"--kubelet-certificate-authority={p.ca.cert}",
            # Dial kubelets by address: node names do not resolve through the machine's resolver.
            "--kubelet-preferred-address-types=InternalIP",
            f"--requestheader-client-ca-file={p.front_proxy_ca.cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--proxy-client-cert-file={p.front_proxy_client.cert}",
            f"--proxy-client-key-file={p.front_proxy_client.key}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
    )


def start_controller_manager(bins: Path, pki: ClusterPKI, kubeconfig: Path, ranges: config.Ranges) -> None:
    procs.start(
        "kube-controller-manager",
        [
            str(bins / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=10257",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca.cert}",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            "--use-service-account-credentials",
            "--allocate-node-cidrs",
            f"--cluster-cidr={ranges.pod_cidr}",
            "--node-cidr-mask-size=24",
            f"--service-cluster-ip-range={ranges.service_cidr}",
            "--leader-elect=false",
            "--controllers=*,-cloud-node-lifecycle",
            "--v=1",
        ],
    )


def start_scheduler(bins: Path, kubeconfig: Path) -> None:
    procs.start(
        "kube-scheduler",
        [
            str(bins / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=10259",
            "--leader-elect=false",
            "--v=1",
        ],
    )
