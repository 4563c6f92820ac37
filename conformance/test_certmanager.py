"""Certificates issued by cert-manager for an Ingress: Ready, approved, stored, served by SNI, and valid."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from fixtures.cluster import ClusterHandle
from fixtures.diagnostics import Diagnose
from fixtures.ingress import Hosts, IngressController, request_colours
from fixtures.observations import Observer
from fixtures.preconditions import Precondition
from fixtures.prestart import Stage
from fixtures.workloads import Workloads
from netconform import capabilities, certs, probes
from netconform.errors import WaitTimeout
from netconform.kube import wait
from netconform.probes import ProbePod

pytestmark = pytest.mark.certmanager

#: The run's probe pod is this module's client: no check here depends on the client's namespace.
SHARED_CLIENT = True
#: Both issuers' hosts route to one backend, and no check asks which answered.
INGRESS_BACKENDS = ("blue",)

CM = "cert-manager.io/v1"
ISSUE_S = 60.0  # measured here: ~2 s for a CA issuer, ~15 s through ACME HTTP-01
ACCOUNT_S = 10.0  # an ACME account registration with the server; ~0.1 s against the local Pebble


def certificate_report(workloads: Workloads, name: str) -> str:
    """Where admins lose hours: the Certificate's conditions, its Orders and Challenges, the solver pods' logs."""
    kube, ns = workloads.kube, workloads.namespace
    lines = []
    for issuer in kube.list_objects(CM, "Issuer", ns):
        for c in (issuer.get("status") or {}).get("conditions") or []:
            lines.append(
                f"Issuer {issuer['metadata']['name']} {c['type']}={c['status']} {c.get('reason', '')}: "
                f"{c.get('message', '')}"
            )
    cert = kube.get(CM, "Certificate", name, ns)
    for c in ((cert or {}).get("status") or {}).get("conditions") or []:
        lines.append(f"Certificate {name} {c['type']}={c['status']} {c.get('reason', '')}: {c.get('message', '')}")
    for kind, api in (
        ("CertificateRequest", CM),
        ("Order", "acme.cert-manager.io/v1"),
        ("Challenge", "acme.cert-manager.io/v1"),
    ):
        if not kube.has_kind(api, kind):
            continue
        for obj in kube.list_objects(api, kind, ns):
            st = obj.get("status") or {}
            conds = "; ".join(f"{c['type']}={c['status']} {c.get('reason', '')}" for c in st.get("conditions") or [])
            lines.append(
                f"{kind} {obj['metadata']['name']} state={st.get('state', '-')} {conds} "
                f"{st.get('reason', '') or ''}".strip()
            )
    for pod in kube.pods(ns, "acme.cert-manager.io/http01-solver=true"):
        lines.append(f"solver pod {pod['metadata']['name']} logs:\n{kube.logs(ns, pod['metadata']['name'], 15)}")
    return "\n".join(lines) or "no Certificate, Order or Challenge found"


def acme_failed(cluster: ClusterHandle, namespace: str) -> bool:
    """An Order or Challenge in a final failed state: the Certificate will not become Ready (cert-manager backs
    off for up to an hour), so waiting longer only delays the diagnosis."""
    for kind in ("Order", "Challenge"):
        if not cluster.kube.has_kind("acme.cert-manager.io/v1", kind):
            return False
        for obj in cluster.kube.list_objects("acme.cert-manager.io/v1", kind, namespace):
            if (obj.get("status") or {}).get("state") in ("invalid", "errored", "expired"):
                return True
    return False


def wait_ready(diagnose: Diagnose, cluster: ClusterHandle, workloads: Workloads, name: str) -> float:
    __tracebackhide__ = True
    started = time.monotonic()
    deadline = cluster.settings.deadline(ISSUE_S)

    def settled() -> str | None:
        cert = cluster.kube.get(CM, "Certificate", name, workloads.namespace) or {}
        if any(
            c["type"] == "Ready" and c["status"] == "True" for c in (cert.get("status") or {}).get("conditions") or []
        ):
            return "ready"
        return "failed" if acme_failed(cluster, workloads.namespace) else None

    try:
        outcome = wait(f"Certificate {workloads.namespace}/{name} Ready", settled, deadline, interval_s=0.5)
    except WaitTimeout:
        outcome = f"not Ready within {deadline:.0f}s"
    if outcome != "ready":
        outcome = "its ACME Order or Challenge failed" if outcome == "failed" else outcome
        diagnose.fail(
            f"Certificate {name} did not become Ready: {outcome}",
            expected="Ready=True",
            observed=certificate_report(workloads, name),
            objects=[f"certificate {workloads.namespace}/{name}", f"ingress {workloads.namespace}/{name}"],
            reproduce=cluster.kube.kubectl("describe", "certificate,order,challenge", "-n", workloads.namespace),
        )
    return time.monotonic() - started


def secret_pair(cluster: ClusterHandle, ns: str, name: str) -> tuple[list[x509.Certificate], bytes]:
    secret = cluster.kube.get("v1", "Secret", name, ns) or {}
    data = secret.get("data") or {}
    chain = x509.load_pem_x509_certificates(base64.b64decode(data.get("tls.crt", "")))
    return chain, base64.b64decode(data.get("tls.key", ""))


def check_issued(
    diagnose: Diagnose,
    observe: Observer,
    cluster: ClusterHandle,
    workloads: Workloads,
    client: ProbePod,
    ctrl: IngressController,
    name: str,
    host: str,
    roots: list[x509.Certificate] | None,
) -> None:
    """Approved request, a matching key pair in the Secret, and that certificate served by SNI and valid."""
    __tracebackhide__ = True
    ns = workloads.namespace
    requests = [
        r
        for r in cluster.kube.list_objects(CM, "CertificateRequest", ns)
        if (r["metadata"].get("annotations") or {}).get("cert-manager.io/certificate-name") == f"{name}-tls"
    ]
    approved = [
        r
        for r in requests
        if any(
            c["type"] == "Approved" and c["status"] == "True" for c in (r.get("status") or {}).get("conditions") or []
        )
    ]
    diagnose.check(
        bool(approved),
        f"no approved CertificateRequest for {name}",
        expected="Approved=True",
        observed=certificate_report(workloads, name),
        objects=[f"certificate {ns}/{name}"],
    )
    chain, key_pem = secret_pair(cluster, ns, f"{name}-tls")
    key = serialization.load_pem_private_key(key_pem, None)
    pub = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # noqa: E731
    diagnose.check(
        bool(chain) and pub(chain[0].public_key()) == pub(key.public_key()),
        f"Secret {name}-tls holds a certificate and key that do not match",
        expected="tls.crt's public key = tls.key's",
        observed="they differ",
        objects=[f"secret {ns}/{name}-tls"],
    )
    want = chain[0].fingerprint(hashes.SHA256())
    got = diagnose.until(
        probes.tls_probe(client, ctrl.service.cluster_ip, ctrl.service.https_port or 443, host),
        lambda r: r.handshake_ok and r.chain[0].fingerprint(hashes.SHA256()) == want,
        via=client,
        what=f"the ingress does not serve the issued certificate for {host}",
        expected=certs.describe(chain[0]),
        objects=[f"secret {ns}/{name}-tls"],
        observed=lambda last: certs.describe(last.chain[0]) if last.chain else f"no handshake: {last.error}",
        deadline_s=30,
    )
    leaf = got.chain[0]
    problem = (
        certs.verify_for_host(got.chain, roots, host)
        if roots
        else (None if host in certs.san_names(leaf) else f"{host} not in the SANs")
    )
    left = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    if problem is None and left < dt.timedelta(days=cluster.settings.min_cert_days):
        problem = f"only {left.days} days of validity left (want at least {cluster.settings.min_cert_days})"
    observe.certificate(host, got.chain, problem or f"issued by cert-manager ({name} issuer), valid")
    diagnose.check(
        problem is None,
        f"the issued certificate for {host} is not valid: {problem}",
        expected="chains to the issuer's root, names the host, valid",
        observed=certs.describe(leaf),
        objects=[f"secret {ns}/{name}-tls"],
        reproduce=client.repro(got.command),
    )


def annotated_ingress(workloads: Workloads, ingress_class: str, issuer: str, host: str, colour: str) -> None:
    """The admin's step: an Ingress annotated with `issuer` and a TLS secret name (`<issuer>-tls`)."""
    workloads.apply(
        workloads.render(
            "certmanager", "ingress", NAME=issuer, ISSUER=issuer, HOST=host, COLOUR=colour, CLASS=ingress_class
        )
    )


def request_ca_flow(workloads: Workloads, ingress_class: str, host: str) -> tuple[x509.Certificate, certs.Key]:
    """A CA Issuer backed by a suite-made CA, and an Ingress annotated with it; returns the CA in use.

    The CA Secret is created once per namespace (the first request wins, at the run's start or here); whoever
    comes second reads it back, so the check verifies against the CA cert-manager really signs with."""
    ca_cert, ca_key = certs.make_ca("netconform test CA", days=2)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "suite-ca"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(certs.cert_pem(ca_cert)).decode(),
            "tls.key": base64.b64encode(certs.key_pem(ca_key)).decode(),
        },
    }
    stored = workloads.create_once(secret)["data"]
    ca_cert = x509.load_pem_x509_certificate(base64.b64decode(stored["tls.crt"]))
    ca_key = serialization.load_pem_private_key(base64.b64decode(stored["tls.key"]), None)  # type: ignore[assignment]
    workloads.apply(workloads.render("certmanager", "ca-issuer"))
    annotated_ingress(workloads, ingress_class, "ca", host, "blue")
    return ca_cert, ca_key


def request_acme_flow(workloads: Workloads, ingress_class: str, host: str, url: str, skip_verify: bool) -> None:
    """An ACME Issuer with an HTTP-01 solver through the ingress, and, once the Issuer has its account, an Ingress
    annotated with it: an Order made before the account is registered fails ("ACME client for issuer not
    initialised") and cert-manager retries it only 5 s later (measured here: the Order waited 5.0 s of 19.9 s)."""
    workloads.apply(
        workloads.render(
            "certmanager", "acme-issuer", ACME_SERVER=url, SKIP_TLS_VERIFY=str(skip_verify).lower(), CLASS=ingress_class
        )
    )

    def registered() -> bool:
        issuer = workloads.kube.get(CM, "Issuer", "acme", workloads.namespace) or {}
        conditions = (issuer.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    try:
        wait("Issuer acme Ready", registered, ACCOUNT_S, interval_s=0.1)
    except WaitTimeout:
        pass  # the Ingress is made all the same: the check's wait reports the Issuer's conditions
    annotated_ingress(workloads, ingress_class, "acme", host, "blue")


def prestart(stage: Stage) -> None:
    """Issuance takes the cluster seconds (ACME: an Order, a Challenge, a solver pod, validation, then cert-manager's
    own requeue delays): both flows are requested at the start of the run, so issuance overlaps other checks."""
    cluster, ws = stage.cluster, stage.workloads
    chosen = capabilities.pick_ingress_class(cluster.info.ingress_classes, cluster.settings.ingress_class)
    if chosen is None:
        return
    hosts = Hosts(ws.namespace, cluster.settings.ingress_domain)
    request_colours(ws, INGRESS_BACKENDS)
    server = acme_server(cluster)
    if server:
        request_acme_flow(ws, chosen.name, hosts("acme"), server[0], server[1])
    request_ca_flow(ws, chosen.name, hosts("ca"))


def test_certmanager_ca_issuer_certificate_is_served_and_chains_to_the_ca(
    observe: Observer,
    ingress_reach: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    client: ProbePod,
    ingress_controller: IngressController,
    hosts: Hosts,
    colours: dict[str, str],
    record_property,
) -> None:
    """A CA Issuer (a suite-made CA) and an annotated Ingress: the Certificate becomes Ready and is served."""
    ingress_reach.require()
    host = hosts("ca")
    ca_cert, _ = request_ca_flow(workloads, ingress_controller.ingress_class.name, host)
    record_property("seconds_to_ready", f"{wait_ready(diagnose, cluster, workloads, 'ca-tls'):.1f}")
    check_issued(diagnose, observe, cluster, workloads, client, ingress_controller, "ca", host, [ca_cert])


def acme_server(cluster: ClusterHandle) -> tuple[str, bool, Callable[[ProbePod], list[x509.Certificate]] | None] | None:
    """(directory URL, skip TLS verify, how to fetch the roots): --acme-server, else a Pebble in the cluster, else
    None."""
    if cluster.settings.acme_server:
        return cluster.settings.acme_server, False, None
    pebble = cluster.kube.list_objects("v1", "Service", selector="app.kubernetes.io/name=pebble")
    if not pebble:
        return None
    svc = pebble[0]["metadata"]
    base = f"{svc['name']}.{svc['namespace']}.svc"

    def roots(client: ProbePod) -> list[x509.Certificate]:
        # Pebble makes a new root at each start and serves it on its management port.
        out = client.run(["curl", "-sSk", "--max-time", "5", f"https://{base}:15000/roots/0"]).stdout
        return x509.load_pem_x509_certificates(out.encode()) if "BEGIN" in out else []

    # Pebble's own TLS certificate is its test certificate: the Issuer may skip verifying it (a local test server).
    return f"https://{base}:14000/dir", True, roots


def test_certmanager_acme_http01_certificate_is_served_and_valid(
    observe: Observer,
    ingress_reach: Precondition,
    diagnose: Diagnose,
    cluster: ClusterHandle,
    workloads: Workloads,
    client: ProbePod,
    ingress_controller: IngressController,
    hosts: Hosts,
    colours: dict[str, str],
    record_property,
) -> None:
    """An ACME Issuer with an HTTP-01 solver through the ingress: Ready, approved, served, chained to the ACME root."""
    ingress_reach.require()
    server = acme_server(cluster)
    if server is None:
        cluster.require(
            "certmanager",
            "no ACME server: pass --acme-server (e.g. Let's Encrypt staging) or run Pebble in the cluster",
        )
    assert server is not None
    url, skip_verify, roots = server
    host = hosts("acme")
    request_acme_flow(workloads, ingress_controller.ingress_class.name, host, url, skip_verify)
    record_property("seconds_to_ready", f"{wait_ready(diagnose, cluster, workloads, 'acme-tls'):.1f}")
    check_issued(
        diagnose,
        observe,
        cluster,
        workloads,
        client,
        ingress_controller,
        "acme",
        host,
        roots(client) if roots else None,
    )
