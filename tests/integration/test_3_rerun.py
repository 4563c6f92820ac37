"""`--lf` and `--ff` work on the suite (pytest's cache is on): after a run with a failure, `--lf` runs only that check,
and `--ff` runs it first."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

TLS = "conformance/test_tls.py"
FAILING = "test_tls_own_certificate_from_a_secret_is_served_and_valid"
#: The fault plugin serves an expired certificate from the TLS Secret: exactly FAILING fails.
EXPIRED = {"NETCONFORM_FAULT": "expired-tls"}


def failing_run(run_suite):
    run = run_suite(TLS, "-p", "faultplugin", env=EXPIRED)
    assert {t for t in run.ids("failed")} == {f"test_tls.py::{FAILING}"}, run.output
    return run


@pytest.mark.timeout(600)
def test_last_failed_reruns_only_the_failed_check_and_failed_first_puts_it_first(run_suite):
    failing_run(run_suite)
    rerun = run_suite(TLS, "--lf")
    assert rerun.outcomes == {f"test_tls.py::{FAILING}": "passed"}, rerun.output

    failing_run(run_suite)
    first = run_suite(TLS, "--ff", workers=0)  # one process: the JUnit order is the order they ran in
    order = [tc.get("name") for tc in ET.parse(first.junit).iter("testcase")]
    assert len(order) == len(first.outcomes) >= 3 and order[0] == FAILING, order
    assert not (first.ids("failed") | first.ids("error")), first.output
