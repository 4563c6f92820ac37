"""Certificate verification as the TLS checks use it: chain, host name, validity with dates."""

import datetime as dt

from netconform import certs


def _leaf(ca, host="web.test", **kw):
    cert, _ = certs.issue(ca, host, dns=(host,), server=True, **kw)
    return cert


def test_a_valid_chain_verifies():
    ca = certs.make_ca("t")
    assert certs.verify_for_host((_leaf(ca),), [ca[0]], "web.test") is None


def test_expired_certificate_says_expired_with_dates():
    ca = certs.make_ca("t")
    now = dt.datetime.now(dt.UTC)
    leaf = _leaf(ca, not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1))
    problem = certs.verify_for_host((leaf,), [ca[0]], "web.test")
    assert problem.startswith("expired: valid until ") and f"{leaf.not_valid_after_utc:%Y-%m-%d}" in problem


def test_wrong_host_and_wrong_ca_fail():
    ca, other = certs.make_ca("t"), certs.make_ca("other")
    assert "does not verify for other.test" in certs.verify_for_host((_leaf(ca),), [ca[0]], "other.test")
    assert certs.verify_for_host((_leaf(ca),), [other[0]], "web.test") is not None
    assert certs.verify_for_host((), [ca[0]], "web.test") == "no certificate was served"


def test_describe_names_subject_issuer_and_sans():
    text = certs.describe(_leaf(certs.make_ca("my ca")))
    assert "CN=web.test" in text and "CN=my ca" in text and "SANs web.test" in text
