"""Certificates and kubeconfigs for the local cluster: one cluster CA, a front-proxy CA, a cert per component."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..certs import Key, issue, make_ca, new_key
from . import files


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path

    def pem(self) -> tuple[bytes, bytes]:
        return self.cert.read_bytes(), self.key.read_bytes()


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(dir_: Path, stem: str, cert: x509.Certificate, key: Key) -> Pair:
    files.private_dir(dir_)
    pair = Pair(dir_ / f"{stem}.crt", dir_ / f"{stem}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.write_private(pair.key, _key_pem(key))  # 0600 from its first byte
    return pair


def kubeconfig(server: str, ca_pem: bytes, client: Pair, user: str, cluster: str = "netconform") -> str:
    cert, key = client.pem()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": cluster,
            "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
            "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        },
        sort_keys=False,
    )


@dataclass
class ClusterPKI:
    """Every certificate and key the cluster needs, written under `dir`."""

    dir: Path
    ca: Pair
    front_proxy_ca: Pair
    apiserver: Pair
    apiserver_kubelet_client: Pair
    front_proxy_client: Pair
    sa_key: Path
    sa_pub: Path
    clients: dict[str, Pair]
    #: etcd's own CA: it signs etcd's serving certificate and the one client etcd accepts (the API server), and
    #: nothing else, so no certificate of the cluster CA (which the API's CSR signer also uses) can reach etcd.
    etcd_ca: Pair
    etcd_server: Pair
    etcd_client: Pair


def create(
    dir_: Path, apiserver_ips: tuple[str, ...], cluster_domain: str, clients: dict[str, tuple[str, tuple[str, ...]]]
) -> ClusterPKI:
    """Create the cluster PKI; `clients` maps a file stem to (CN, groups) of a client certificate."""
    ca = make_ca("netconform-ca")
    fp_ca = make_ca("netconform-front-proxy-ca")
    ca_pair = _write(dir_, "ca", *ca)
    fp_pair = _write(dir_, "front-proxy-ca", *fp_ca)
    dns = (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster_domain}",
        "localhost",
    )
    apiserver = _write(dir_, "apiserver", *issue(ca, "kube-apiserver", dns=dns, ips=apiserver_ips, server=True))
    kc = _write(dir_, "apiserver-kubelet-client", *issue(ca, "kube-apiserver-kubelet-client", client=True))
    fpc = _write(dir_, "front-proxy-client", *issue(fp_ca, "front-proxy-client", client=True))
    sa = new_key()
    sa_key, sa_pub = dir_ / "sa.key", dir_ / "sa.pub"
    files.write_private(sa_key, _key_pem(sa))
    sa_pub.write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    issued = {
        stem: _write(dir_, stem, *issue(ca, cn, orgs=groups, client=True)) for stem, (cn, groups) in clients.items()
    }
    etcd_ca = make_ca("netconform-etcd-ca")
    return ClusterPKI(
        dir_,
        ca_pair,
        fp_pair,
        apiserver,
        kc,
        fpc,
        sa_key,
        sa_pub,
        issued,
        _write(dir_, "etcd-ca", *etcd_ca),
        _write(
            dir_,
            "etcd-server",
            *issue(etcd_ca, "etcd", dns=("localhost",), ips=("127.0.0.1",), server=True, client=True),
        ),
        _write(dir_, "apiserver-etcd-client", *issue(etcd_ca, "kube-apiserver-etcd-client", client=True)),
    )


def kubelet_serving(pki: ClusterPKI, node: str, ip: str) -> Pair:
    ca = (
        x509.load_pem_x509_certificate(pki.ca.cert.read_bytes()),
        serialization.load_pem_private_key(pki.ca.key.read_bytes(), None),
    )
    return _write(pki.dir, f"kubelet-serving-{node}", *issue(ca, node, dns=(node,), ips=(ip,), server=True))  # type: ignore[arg-type]
