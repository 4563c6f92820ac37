"""The whole conformance suite passes on the healthy local cluster, with no skip: it has every capability (MetalLB
for LoadBalancers, kube-router for NetworkPolicy)."""

from __future__ import annotations

import browser
import pytest

from conftest import PodWatch
from netconform.cluster import lifecycle

#: The node-pair layers a healthy 2-node run draws (netconform.report.model.LAYERS).
LAYERS = 9


@pytest.mark.timeout(600)
def test_suite_passes_on_the_healthy_local_cluster(run_suite, record_property, measured, least_privileged, kubeconfig):
    """The whole suite, run as a ServiceAccount bound to exactly the rights `netconform rbac` prints; every pod in
    its namespaces carries the run's label, but cert-manager's own ACME solver."""
    identity = least_privileged(privileged=True)
    with PodWatch(kubeconfig) as pods:
        run = run_suite(kube_config=identity)
    measured["healthy_suite_seconds"] = run.seconds
    record_property("suite_seconds", f"{run.seconds:.1f}")
    failed = run.ids("failed") | run.ids("error")
    assert run.outcomes, f"the suite ran no test:\n{run.output}"
    assert not failed, "failed on a healthy cluster:\n" + "\n\n".join(f"{t}\n{run.messages[t]}" for t in sorted(failed))
    assert not run.ids("skipped"), "skipped on the local cluster:\n" + "\n".join(
        f"{t}: {run.messages[t]}" for t in sorted(run.ids("skipped"))
    )
    assert run.rc == 0, run.output
    of_run = pods.of_run(run.run_id)
    assert len(of_run) >= 30, f"the pod watch saw {len(of_run)} pods of the run: {of_run}"
    unlabelled = [
        f"{ns}/{name} (made by a {owner})" for ns, name, run_label, owner in of_run if run_label != run.run_id
    ]
    assert all(p.endswith("(made by a Challenge)") for p in unlabelled), f"pods without the run's label: {unlabelled}"
    print(f"suite: {len(run.ids('passed'))} passed, {len(run.ids('skipped'))} skipped in {run.seconds:.1f}s")
    HEALTHY_RUN.append(run)


HEALTHY_RUN: list = []


def test_report_of_the_healthy_run_is_drawn_in_chromium_with_networking_off(tmp_path, kubeconfig):
    """report.html of the healthy run: Chromium, with no network, draws the summary, every layer's node x node grid
    (all green), the spreads with their bound and the served certificates; the file stays under 2 MB."""
    if not HEALTHY_RUN:
        pytest.fail("the healthy suite run did not complete", pytrace=False)
    report = HEALTHY_RUN[0].report_dir / "report.html"
    assert report.stat().st_size < 2_000_000, f"{report} is {report.stat().st_size} bytes"
    assert HEALTHY_RUN[0].diagnosis() is None
    drawn = browser.measure(report, tmp_path)
    assert all(v["count"] == v["drawn"] for k, v in drawn.items() if k != "failures"), drawn
    assert drawn["diagnosis"]["drawn"] == 1 and drawn["area_rows"]["drawn"] >= 14, drawn
    assert drawn["grids"]["drawn"] == LAYERS, drawn
    nodes = int(str((lifecycle.read_meta() or {})["nodes"]))
    assert drawn["cells"]["drawn"] == LAYERS * nodes * nodes and drawn["failed_cells"]["count"] == 0, drawn
    assert drawn["bars"]["drawn"] >= 3 and drawn["floors"]["drawn"] >= 1, drawn
    assert drawn["certificate_rows"]["drawn"] == 1 + 4, drawn  # header, default, own, CA issuer, ACME


@pytest.mark.timeout(600)
def test_suite_without_privileged_checks_passes_without_the_privileged_extras(run_suite, least_privileged):
    """`-m "not privileged"` as a ServiceAccount without the privileged extras (nodes/proxy): 0 failures."""
    run = run_suite("-m", "not privileged", kube_config=least_privileged(privileged=False))
    failed = run.ids("failed") | run.ids("error")
    assert run.outcomes, f"the suite ran no test:\n{run.output}"
    assert not failed, "failed:\n" + "\n\n".join(f"{t}\n{run.messages[t]}" for t in sorted(failed))
    assert run.rc == 0, run.output
