"""The whole conformance suite passes on the healthy local cluster, with no skip: it has every capability (MetalLB
for LoadBalancers, kube-router for NetworkPolicy)."""

from __future__ import annotations

import pytest


@pytest.mark.timeout(600)
def test_suite_passes_on_the_healthy_local_cluster(run_suite, record_property, measured, least_privileged):
    """The whole suite, run as a ServiceAccount bound to exactly the rights `netconform rbac` prints."""
    run = run_suite(kube_config=least_privileged(privileged=True))
    measured["healthy_suite_seconds"] = run.seconds
    record_property("suite_seconds", f"{run.seconds:.1f}")
    failed = run.ids("failed") | run.ids("error")
    assert run.outcomes, f"the suite ran no test:\n{run.output}"
    assert not failed, "failed on a healthy cluster:\n" + "\n\n".join(f"{t}\n{run.messages[t]}" for t in sorted(failed))
    assert not run.ids("skipped"), "skipped on the local cluster:\n" + "\n".join(
        f"{t}: {run.messages[t]}" for t in sorted(run.ids("skipped"))
    )
    assert run.rc == 0, run.output
    print(f"suite: {len(run.ids('passed'))} passed, {len(run.ids('skipped'))} skipped in {run.seconds:.1f}s")


@pytest.mark.timeout(600)
def test_suite_without_privileged_checks_passes_without_the_privileged_extras(run_suite, least_privileged):
    """`-m "not privileged"` as a ServiceAccount without the privileged extras (nodes/proxy): 0 failures."""
    run = run_suite("-m", "not privileged", kube_config=least_privileged(privileged=False))
    failed = run.ids("failed") | run.ids("error")
    assert run.outcomes, f"the suite ran no test:\n{run.output}"
    assert not failed, "failed:\n" + "\n\n".join(f"{t}\n{run.messages[t]}" for t in sorted(failed))
    assert run.rc == 0, run.output
