"""What a process has seen ready it does not ask for again: a namespace shared by several modules, the run's probe
pods that every module probes from. Asked for again, each was applied anew and waited for anew: two round trips to
the API server per module (#12)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

import fixtures.namespaces as namespaces
import fixtures.workloads as workloads
from fixtures.namespaces import NamespaceFactory
from fixtures.workloads import Workloads


class FakeKube:
    """Counts applies, reads and deletes; every namespace, ServiceAccount and pod it is asked about exists, ready."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, str]] = []
        self.reads: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, str]] = []

    def apply(self, docs: list[Any], namespace: str | None = None, labels: Any = None) -> list[Any]:
        self.applied += [(d["kind"], d["metadata"]["name"]) for d in docs]
        return docs

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.reads.append((kind, name))
        if kind != "Pod":
            return {"metadata": {"name": name}}
        return {
            "metadata": {"name": name},
            "spec": {"nodeName": "nc-node-1"},
            "status": {"podIP": "10.244.0.9", "conditions": [{"type": "Ready", "status": "True"}]},
        }

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, grace: Any = None) -> None:
        self.deleted.append((kind, name))


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> FakeKube:
    monkeypatch.setattr(namespaces, "REPORTS", tmp_path)
    monkeypatch.setattr(workloads, "_READY_CLIENTS", {})
    monkeypatch.setattr(workloads, "_REQUESTED_CLIENTS", set())
    return FakeKube()


def test_a_namespace_asked_for_again_is_applied_and_waited_for_once(kube: FakeKube) -> None:
    factory = NamespaceFactory(kube, "r1")  # type: ignore[arg-type]
    assert factory.create("ingress", shared=True) == factory.create("ingress", shared=True) == "nc-ingress-r1"
    assert kube.applied == [("Namespace", "nc-ingress-r1")]
    assert kube.reads.count(("ServiceAccount", "default")) == 1


def test_a_namespace_asked_for_by_several_threads_at_once_is_applied_once(kube: FakeKube) -> None:
    factory = NamespaceFactory(kube, "r1")  # type: ignore[arg-type]
    apply, in_apply = kube.apply, threading.Event()

    def slow_apply(docs: list[Any], namespace: str | None = None, labels: Any = None) -> list[Any]:
        in_apply.set()
        time.sleep(0.1)  # the other threads ask while the first is still making it
        return apply(docs, namespace, labels)

    kube.apply = slow_apply  # type: ignore[method-assign]
    with ThreadPoolExecutor(4) as pool:
        names = list(pool.map(lambda _: factory.create("ingress", shared=True), range(4)))
    assert in_apply.is_set() and names == ["nc-ingress-r1"] * 4
    assert kube.applied == [("Namespace", "nc-ingress-r1")]


def test_a_namespace_deleted_is_made_again_when_asked_for(kube: FakeKube) -> None:
    factory = NamespaceFactory(kube, "r1")  # type: ignore[arg-type]
    factory.create("dns")
    factory.delete("nc-dns-r1")
    factory.create("dns")
    assert kube.applied == [("Namespace", "nc-dns-r1")] * 2


def cluster_of(kube: FakeKube) -> Any:
    return SimpleNamespace(kube=kube, settings=SimpleNamespace(image="nc-toolbox", image_registry="", deadline=float))


def test_a_probe_pod_ready_in_this_process_is_neither_applied_nor_waited_for_again(kube: FakeKube) -> None:
    first, second = Workloads(cluster_of(kube), "nc-preflight-r1"), Workloads(cluster_of(kube), "nc-preflight-r1")
    first.request_pinned_client("nc-node-1")
    first.request_pinned_client("nc-node-1")  # asked for again before it is ready: applied once
    pod = first.pinned_client("nc-node-1")
    second.request_pinned_client("nc-node-1")
    assert second.pinned_client("nc-node-1") == pod
    assert (pod.name, pod.ip, pod.node) == ("client-nc-node-1", "10.244.0.9", "nc-node-1")
    assert kube.applied == [("Pod", "client-nc-node-1")]
    assert kube.reads == [("Pod", "client-nc-node-1")]


def test_a_probe_pod_of_another_namespace_or_deleted_is_asked_for_anew(kube: FakeKube) -> None:
    run, other = Workloads(cluster_of(kube), "nc-preflight-r1"), Workloads(cluster_of(kube), "nc-dns-r1")
    run.client("client")
    other.client("client")
    run.delete_pod("client")
    run.client("client")
    assert kube.applied == [("Pod", "client")] * 3
