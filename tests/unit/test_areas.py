"""The capability registry: one declaration per area, every skip through it, README tables from it."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
from kubernetes.client import ApiException

from netconform import areas, docs
from netconform.capabilities import ClusterInfo, IngressClassInfo, NodeInfo, info_from_dict, loadbalancer_info
from netconform.errors import AdmissionDenied, Forbidden
from netconform.kube import refusal_error
from netconform.settings import resolve

ROOT = Path(__file__).resolve().parents[2]


def info(nodes: int = 2, dns: bool = True, classes: tuple[IngressClassInfo, ...] = ()) -> ClusterInfo:
    return ClusterInfo(
        "kubeconfig",
        "https://10.0.0.1:6443",
        "ctx",
        "v1.35.4",
        tuple(NodeInfo(f"n{i}", f"10.0.0.{10 + i}", (), True, True) for i in range(nodes)),
        "10.96.0.10" if dns else None,
        "kube-system/kube-dns" if dns else None,
        "cluster.local",
        classes,
        False,
    )


def test_no_bare_skip_in_the_checks_or_fixtures():
    """Every skip goes through the registry, so it is unsupported or not-applicable and --require sees it."""
    offenders = []
    for folder in ("conformance", "fixtures"):
        for path in (ROOT / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in ("skip", "skipif", "xfail", "importorskip"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []


def test_every_area_has_its_modules_and_every_module_one_area():
    stems = areas.module_stems()
    for stem, area in stems.items():
        module = ROOT / "conformance" / f"test_{stem}.py"
        assert module.exists(), f"area {area} has no conformance/test_{stem}.py"
        assert f"pytestmark = pytest.mark.{area}\n" in module.read_text()
    for module in (ROOT / "conformance").glob("test_*.py"):
        assert module.stem.removeprefix("test_") in stems, f"{module.name} is not a registered area or part of one"
    assert stems["clusterip_terminating"] == "clusterip" and set(areas.NAMES) <= set(stems)
    for area in areas.AREAS:
        assert set(area.depends) <= set(areas.NAMES)


def test_markers_come_from_the_registry():
    lines = areas.marker_lines()
    assert [line.split(":")[0] for line in lines] == [*areas.NAMES, "privileged", "disruptive"]
    assert "markers" not in (ROOT / "pyproject.toml").read_text().split("[tool.pytest]")[1].split("[")[0]


def test_require_all_means_every_area():
    assert resolve({"require": "all"}, env={}).require == frozenset(areas.NAMES)


def test_a_missing_dependency_names_the_area_at_fault():
    s = resolve({}, env={})
    assert areas.missing("headless", info(dns=False), s) == ("dns", "no cluster DNS Service kube-system/kube-dns")
    assert areas.missing("headless", info(), s) is None
    assert areas.missing("crossnode", info(nodes=1), s) == (
        "crossnode",
        "needs at least 2 schedulable Ready nodes (cluster has 1)",
    )
    assert areas.missing("clusterip", info(nodes=0), s)[1].startswith("no schedulable Ready node")


def test_unsupported_is_a_skip_unless_its_area_or_cause_is_required():
    with pytest.raises(areas.Unsupported, match=r"unsupported \(dns\): no DNS"):
        areas.unsupported("headless", "no DNS", frozenset(), because_of="dns")
    for required in ({"headless"}, {"dns"}):
        with pytest.raises(pytest.fail.Exception, match="is unsupported on this cluster: no DNS"):
            areas.unsupported("headless", "no DNS", frozenset(required), because_of="dns")
    with pytest.raises(areas.NotApplicable) as e:
        areas.not_applicable("a default IngressClass exists")
    assert areas.outcome_of(e.value) == areas.NOT_APPLICABLE
    assert isinstance(e.value, pytest.skip.Exception)


def test_readme_tables_are_generated_from_the_code():
    text = (ROOT / "README.md").read_text()
    for name, table in docs.TABLES.items():
        assert docs.generated(text, name) == table(), f"README table {name!r} is stale: run python -m netconform.docs"


def test_loadbalancer_is_known_from_the_api():
    local = (NodeInfo("a", "1.1.1.1", (), True, True, local=True),)
    assert loadbalancer_info(local, set(), False).absent
    assert loadbalancer_info(local, {"metallb.io"}, False).implementation == "MetalLB"
    cloud = (NodeInfo("a", "1.1.1.1", (), True, True, provider_id="aws:///eu-west-1a/i-1"),)
    assert loadbalancer_info(cloud, set(), False).implementation == "cloud provider aws"
    kind = (NodeInfo("a", "1.1.1.1", (), True, True, provider_id="kind://docker/kind/kind-worker"),)
    unknown = loadbalancer_info(kind, set(), False)
    assert unknown.implementation is None and unknown.absent is None  # cannot tell: the check waits --lb-wait


def test_workers_receive_the_controllers_detection_unchanged():
    original = info(classes=(IngressClassInfo("nginx", "k8s.io/ingress-nginx", True),))
    doc = json.loads(json.dumps(dataclasses.asdict(original)))  # as execnet would carry it (tuples as lists)
    assert info_from_dict(doc).schedulable_nodes == original.schedulable_nodes
    assert info_from_dict(doc).ingress_classes == original.ingress_classes


def _api_error(status: int, message: str) -> ApiException:
    e = ApiException(status=status, reason="x")
    e.body = json.dumps({"kind": "Status", "code": status, "message": message})
    return e


def test_rbac_denial_says_permission_admission_says_the_servers_words():
    rbac = refusal_error(
        _api_error(403, 'pods is forbidden: User "system:serviceaccount:a:b" cannot create resource "pods"'),
        "patch",
        "Pod",
        "ns1",
    )
    assert isinstance(rbac, Forbidden) and "need that RBAC permission" in str(rbac)
    psa = refusal_error(
        _api_error(403, 'pods "x" is forbidden: violates PodSecurity "restricted:latest": hostNetwork=true'),
        "patch",
        "Pod",
        "ns1",
    )
    assert isinstance(psa, AdmissionDenied)
    assert 'refused to patch Pod in namespace ns1: pods "x" is forbidden: violates PodSecurity' in str(psa)
    assert "permission" not in str(psa)
    hook = refusal_error(
        _api_error(400, 'admission webhook "deny.example" denied the request: no'), "patch", "Pod", "n"
    )
    assert isinstance(hook, AdmissionDenied) and "deny.example" in str(hook)
    assert refusal_error(_api_error(404, "not found"), "get", "Pod", "n") is None
    ws = ApiException(
        status=0,
        reason="Handshake status 403 Forbidden -+-+- {'a': 'b'} -+-+- b'"
        + json.dumps({"code": 403, "message": 'User "u" cannot create resource "pods/exec"'})
        + "'",
    )
    assert isinstance(refusal_error(ws, "create", "pods/exec", "n"), Forbidden)


def test_tls_and_certmanager_live_in_the_ingress_namespace_which_no_worker_deletes_alone():
    assert areas.home_of("tls") == ("ingress", True)
    assert areas.home_of("certmanager") == ("ingress", True)
    assert areas.home_of("ingress") == ("ingress", True)  # shared: tls may still run in it when ingress's worker ends
    assert areas.home_of("dns") == ("dns", False)
    homes = {a.home for a in areas.AREAS if a.home}
    assert homes <= set(areas.NAMES) and all(not areas.BY_NAME[h].home for h in homes)  # one level, real areas
