"""TLS on Ingress: the default certificate, a user's own certificate from a Secret, and the HTTP->HTTPS redirect."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.ingress import Hosts, IngressController, request_colours
from fixtures.observations import Observer
from fixtures.preconditions import Precondition
from fixtures.prestart import Stage
from fixtures.tls import ServerCert
from fixtures.workloads import Workloads
from netconform import certs, probes
from netconform.probes import ProbePod, TlsResult

pytestmark = pytest.mark.tls

#: The run's probe pod is this module's client: no check here depends on the client's namespace.
SHARED_CLIENT = True
#: Every host here routes to one backend, and no check asks which answered.
INGRESS_BACKENDS = ("blue",)


def prestart(stage: Stage) -> None:
    """The ingress backends, requested at the start of the run."""
    request_colours(stage.workloads, INGRESS_BACKENDS)


@pytest.fixture(autouse=True)
def controller_serves_https(cluster: ClusterHandle, ingress_controller: IngressController) -> None:
    """Every TLS check needs an HTTPS port on the controller's Service."""
    svc = ingress_controller.service
    if not svc.https_port:
        cluster.require("tls", f"controller Service {svc.namespace}/{svc.name} has no HTTPS port")


def https_port(ctrl: IngressController) -> int:
    assert ctrl.service.https_port, "checked by controller_serves_https"
    return ctrl.service.https_port


@pytest.fixture(scope="module")
def own_cert(
    workloads: Workloads,
    ingress_controller: IngressController,
    hosts: Hosts,
    colours: dict[str, str],
    issue_certificate: Callable[..., ServerCert],
) -> ServerCert:
    """A certificate for the `secure` host from the module's CA, in a Secret referenced by an Ingress."""
    cert = issue_certificate(hosts("secure"))
    annotations = ingress_controller.profile.redirect_annotations or {}
    docs = [
        cert.secret("secure-tls"),
        *workloads.render(
            "tls",
            "own-cert",
            NAME="secure",
            CLASS=ingress_controller.ingress_class.name,
            HOST=hosts("secure"),
            SECRET="secure-tls",
        ),
    ]
    docs[1]["metadata"]["annotations"] = dict(annotations)
    workloads.apply(docs)
    return cert


def served(client: ProbePod, ctrl: IngressController, host: str) -> TlsResult:
    return probes.tls_handshake(client, ctrl.service.cluster_ip, https_port(ctrl), host)


def test_tls_default_certificate_for_a_host_without_tls(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    client: ProbePod,
    ingress_controller: IngressController,
    hosts: Hosts,
    colours: dict[str, str],
    record_property,
    observe: Observer,
) -> None:
    """HTTPS for a host with no TLS section: the handshake works with the default certificate, which does not verify."""
    ingress_reach.require()
    host = hosts("plain")
    workloads.apply(workloads.render("tls", "plain", CLASS=ingress_controller.ingress_class.name, HOST=host))
    cmd = [
        "sh",
        "-c",
        f"openssl s_client -connect {ingress_controller.service.cluster_ip}:{https_port(ingress_controller)}"
        f" -servername {host} -verify_hostname {host} </dev/null 2>&1",
    ]
    try:
        out = probes.eventually(
            lambda: client.run(cmd),
            lambda r: "BEGIN CERTIFICATE" in r.stdout or "Server certificate" in r.stdout,
            cluster.settings.deadline(probes.PROBE_S),
        )
    except probes.NotConsistent as e:
        diagnose.fail(
            f"no TLS handshake for {host}",
            expected="a certificate (the controller's default)",
            observed=e.last.stdout[-300:],
            objects=[client.describe()],
            reproduce=client.repro(cmd),
        )
    chain = probes.parse_s_client(out.stdout, cmd).chain
    code = re.search(r"Verify return code: (\d+) \(([^)]*)\)", out.stdout)
    leaf = certs.describe(chain[0]) if chain else "(not shown)"
    record_property("default-certificate", leaf)
    observe.certificate(host, chain, "the controller's default certificate (not verified for this host, as expected)")
    diagnose.check(
        code is not None and code.group(1) != "0",
        f"the default certificate verifies for {host}, which it was never issued for",
        expected="verification fails (self-signed or not for this host)",
        observed=f"verify return code {code.group(1) if code else '?'}; {leaf}",
        objects=[client.describe()],
        reproduce=client.repro(cmd),
    )


def secret_certificate(cluster: ClusterHandle, namespace: str, name: str) -> x509.Certificate:
    """The certificate a `kubernetes.io/tls` Secret holds now (what the admin configured)."""
    secret = cluster.kube.get("v1", "Secret", name, namespace) or {}
    return x509.load_pem_x509_certificate(base64.b64decode((secret.get("data") or {}).get("tls.crt", "")))


def test_tls_own_certificate_from_a_secret_is_served_and_valid(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    workloads: Workloads,
    cluster: ClusterHandle,
    client: ProbePod,
    ingress_controller: IngressController,
    own_cert: ServerCert,
    observe: Observer,
) -> None:
    """With SNI for the host, the controller serves the Secret's certificate: it chains to the CA, names the host,
    and is inside its validity window with --min-cert-days left."""
    ingress_reach.require()
    configured = secret_certificate(cluster, workloads.namespace, "secure-tls")
    want = configured.fingerprint(hashes.SHA256())
    got = diagnose.until(
        lambda: served(client, ingress_controller, own_cert.host),
        lambda r: r.handshake_ok and r.chain[0].fingerprint(hashes.SHA256()) == want,
        via=client,
        what=f"the certificate from Secret secure-tls is not served for {own_cert.host}",
        expected=f"leaf {certs.describe(configured)}",
        objects=[f"secret {workloads.namespace}/secure-tls", f"ingress {workloads.namespace}/secure"],
        observed=lambda last: certs.describe(last.chain[0]) if last.chain else f"no handshake: {last.error}",
        deadline_s=30,
    )
    problem = certs.verify_for_host(got.chain, [own_cert.ca], own_cert.host)
    leaf = got.chain[0]
    left = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    if problem is None and left < dt.timedelta(days=cluster.settings.min_cert_days):
        problem = f"only {left.days} days of validity left (want at least {cluster.settings.min_cert_days})"
    observe.certificate(own_cert.host, got.chain, problem or "the Secret's certificate, valid")
    diagnose.check(
        problem is None,
        f"the served certificate for {own_cert.host} is not valid: {problem}",
        expected=f"chains to the suite's CA, names {own_cert.host}, valid now",
        observed=f"{problem}; {certs.describe(leaf)}",
        objects=[f"secret {workloads.namespace}/secure-tls"],
        reproduce=client.repro(got.command),
    )


def test_tls_http_redirects_to_https(
    ingress_reach: Precondition,
    diagnose: Diagnose,
    workloads: Workloads,
    cluster: ClusterHandle,
    client: ProbePod,
    ingress_controller: IngressController,
    own_cert: ServerCert,
    observe: Observer,
) -> None:
    """Where the controller profile supports it, HTTP for a TLS host redirects to https://, same host and path."""
    ingress_reach.require()
    if ingress_controller.profile.redirect_annotations is None:
        cluster.require(
            "tls", f"controller profile {ingress_controller.profile.name} has no HTTP->HTTPS redirect annotation"
        )
    path = "/some/path"
    want = f"https://{own_cert.host}{path}"
    diagnose.until(
        probes.http_probe(client, ingress_controller.http_url + path, host=own_cert.host),
        lambda r: r.status in (301, 302, 307, 308) and r.headers.get("location") == want,
        via=client,
        what=f"HTTP for {own_cert.host} does not redirect to HTTPS",
        expected=f"301/302/307/308 with Location: {want}",
        objects=[f"ingress {workloads.namespace}/secure {ingress_controller.profile.redirect_annotations}"],
    )
