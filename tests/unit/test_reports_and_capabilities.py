"""Report building and capability-skip logic, from detected cluster facts (no cluster needed)."""

import json

import pytest

from fixtures.cluster import ClusterHandle
from netconform import areas
from netconform.capabilities import (
    ClusterInfo,
    IngressClassInfo,
    NodeInfo,
    ingress_class_info,
    node_info,
    pick_ingress_class,
)
from netconform.report import cluster_info_document, header_lines
from netconform.settings import resolve

NGINX = (IngressClassInfo("nginx", "k8s.io/ingress-nginx", False),)


def info(nodes=2, classes=NGINX, cert_manager=False):
    return ClusterInfo(
        "local",
        "https://172.28.0.1:6443",
        None,
        "v1.35.4",
        tuple(NodeInfo(f"n{i}", f"172.28.0.{10 + i}", (f"10.244.{i}.0/24",), True, True) for i in range(nodes)),
        "10.96.0.10",
        "kube-system/kube-dns",
        "cluster.local",
        classes,
        cert_manager,
    )


def handle(i, **opts):
    return ClusterHandle(kube=None, info=i, settings=resolve(opts, env={}), provided=None)


def missing_capability(h, area):
    found = areas.missing(area, h.info, h.settings)
    return found[1] if found else None


def test_header_names_provider_version_nodes_dns_and_classes():
    text = "\n".join(header_lines(info()))
    for part in (
        "provider local",
        "v1.35.4",
        "n0 (172.28.0.10)",
        "10.96.0.10",
        "nginx (k8s.io/ingress-nginx)",
        "cert-manager: no",
    ):
        assert part in text


def test_cluster_info_json_round_trips():
    doc = json.loads(cluster_info_document(info(), "r1", {"settings": {"provider": "local"}}))
    assert doc["run"] == "r1" and doc["nodes"][1]["name"] == "n1" and doc["settings"]["provider"] == "local"


def test_crossnode_needs_two_schedulable_nodes():
    assert (
        missing_capability(handle(info(nodes=1)), "crossnode")
        == "needs at least 2 schedulable Ready nodes (cluster has 1)"
    )
    assert missing_capability(handle(info(nodes=3)), "crossnode") is None


def test_ingress_capability_and_class_choice():
    assert "no IngressClass" in missing_capability(handle(info(classes=())), "ingress")
    two = (IngressClassInfo("a", "x", False), IngressClassInfo("b", "y", False))
    assert "none is default" in missing_capability(handle(info(classes=two)), "ingress")
    assert missing_capability(handle(info(classes=two), ingress_class="b"), "ingress") is None
    assert "not found" in missing_capability(handle(info(classes=two), ingress_class="c"), "ingress")
    assert pick_ingress_class(two + (IngressClassInfo("d", "z", True),), None).name == "d"


def test_require_turns_a_skip_into_a_failure():
    h = handle(info(), require="certmanager")
    with pytest.raises(pytest.fail.Exception, match="required area 'certmanager' is unsupported"):
        h.require("certmanager", missing_capability(h, "certmanager"))
    with pytest.raises(areas.Unsupported, match="cert-manager CRDs"):
        handle(info()).require("certmanager", missing_capability(handle(info()), "certmanager"))


def test_node_and_class_parsing_from_api_objects():
    n = node_info(
        {
            "metadata": {
                "name": "a",
                "labels": {"netconform.io/local-cluster": "true"},
                "annotations": {"netconform.io/cni-conf-dir": "/x"},
            },
            "spec": {"podCIDR": "10.244.1.0/24", "taints": [{"effect": "NoSchedule", "key": "k"}]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "1.2.3.4"}],
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )
    assert n == NodeInfo("a", "1.2.3.4", ("10.244.1.0/24",), False, True, "/x", None, True, None)
    c = ingress_class_info(
        {
            "metadata": {"name": "x", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
            "spec": {"controller": "c"},
        }
    )
    assert c.default and c.controller == "c"
