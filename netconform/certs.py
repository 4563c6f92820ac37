"""Certificates with `cryptography`: CAs, leaf certificates, PEM, and verification of a served chain."""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: x509.Name, issuer: x509.Name, key: Key, not_before: dt.datetime, not_after: dt.datetime, *, ca: bool
) -> x509.CertificateBuilder:
    """What every certificate here shares: names, key, serial, validity, basic constraints and key usage."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=ca,
                crl_sign=ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def make_ca(cn: str, days: int = 365) -> tuple[x509.Certificate, Key]:
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        _builder(_name(cn), _name(cn), key, now - dt.timedelta(minutes=5), now + dt.timedelta(days=days), ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    ca: tuple[x509.Certificate, Key],
    cn: str,
    *,
    orgs: tuple[str, ...] = (),
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 365,
) -> tuple[x509.Certificate, Key]:
    """Issue a leaf certificate signed by `ca`."""
    ca_cert, ca_key = ca
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = _builder(
        _name(cn, orgs),
        ca_cert.subject,
        key,
        not_before or now - dt.timedelta(minutes=5),
        not_after or now + dt.timedelta(days=days),
        ca=False,
    ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def describe(cert: x509.Certificate) -> str:
    return (
        f"subject {cert.subject.rfc4514_string() or '(empty)'}, issuer {cert.issuer.rfc4514_string()}, "
        f"valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, "
        f"SANs {', '.join(san_names(cert)) or '(none)'}"
    )


def san_names(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in ext]


def verify_for_host(
    chain: tuple[x509.Certificate, ...], roots: list[x509.Certificate], host: str, now: dt.datetime | None = None
) -> str | None:
    """Verify a served chain for `host` against `roots` (path, names, validity); None, or why it fails."""
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    if not chain:
        return "no certificate was served"
    leaf = chain[0]
    now = now or dt.datetime.now(dt.UTC)
    if now > leaf.not_valid_after_utc:
        return f"expired: valid until {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, now {now:%Y-%m-%d %H:%M} UTC"
    if now < leaf.not_valid_before_utc:
        return f"not yet valid: valid from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    try:
        verifier = PolicyBuilder().store(Store(roots)).time(now).build_server_verifier(x509.DNSName(host))
        verifier.verify(leaf, list(chain[1:]))
    except VerificationError as e:
        return f"does not verify for {host}: {e}"
    return None
