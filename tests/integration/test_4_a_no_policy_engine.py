"""A local cluster booted with `--network-policy=none --loadbalancer=none`: nothing enforces NetworkPolicy and
nothing serves LoadBalancer Services, so each area ends unsupported in seconds, saying why, and fails under
--require. (Runs last but one: it re-creates the cluster, and test_4_down takes it down.)"""

from __future__ import annotations

import subprocess

from netconform.cluster import lifecycle, procs


def test_without_an_engine_the_area_is_unsupported_in_seconds_and_fails_when_required(run_suite):
    nodes = str((lifecycle.read_meta() or {}).get("nodes", 2))
    up = subprocess.run(
        ["netconform", "cluster", "up", "--recreate", "--nodes", nodes, "--network-policy=none", "--loadbalancer=none"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert up.returncode == 0, up.stderr[-3000:]
    assert (lifecycle.read_meta() or {}).get("network_policy") == "none"
    assert not [name for name in procs.recorded() if name.startswith("kube-router-")]
    assert (lifecycle.read_meta() or {}).get("loadbalancer") == "none"

    plain = run_suite("conformance/test_networkpolicy.py")
    skipped = plain.ids("skipped")
    assert plain.rc == 0 and len(skipped) == len(plain.outcomes) == 16, plain.output
    assert all("NetworkPolicy is not enforced" in plain.messages[t] for t in skipped), plain.output
    assert plain.seconds < 60, f"finding no engine took {plain.seconds:.0f}s"

    required = run_suite("conformance/test_networkpolicy.py", "--require=networkpolicy")
    failed = required.ids("failed") | required.ids("error")
    assert required.rc != 0 and len(failed) == 16, required.output
    assert all("NetworkPolicy is not enforced" in required.messages[t] for t in failed), required.output
    print(f"no engine: unsupported in {plain.seconds:.1f}s, required and failed in {required.seconds:.1f}s")


def test_without_a_loadbalancer_the_area_is_unsupported_at_once_and_fails_when_required(run_suite):
    """The cluster of the test above has no MetalLB: known from the API, not from a Service left pending."""
    assert (lifecycle.read_meta() or {}).get("loadbalancer") == "none"
    why = "no LoadBalancer implementation"
    plain = run_suite("conformance/test_loadbalancer.py")
    skipped = plain.ids("skipped")
    assert plain.rc == 0 and skipped and len(skipped) == len(plain.outcomes), plain.output
    assert all(why in plain.messages[t] for t in skipped), plain.output
    assert max(plain.times[t] for t in skipped) < 1, plain.times

    required = run_suite("conformance/test_loadbalancer.py", "--require=loadbalancer")
    failed = required.ids("failed") | required.ids("error")
    assert required.rc != 0 and failed == skipped, required.output
    assert all("required area 'loadbalancer' is unsupported" in required.messages[t] for t in failed), required.output
