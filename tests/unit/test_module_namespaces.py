"""A module's own namespace is made when its objects first need one: a module whose objects all live in the run's
namespace makes none (a namespace costs the 2-node local cluster about 0.45 CPU-s to create and delete, #12)."""

from types import ModuleType, SimpleNamespace
from typing import Any

from fixtures.prestart import Stage, _request
from fixtures.workloads import Workloads


class Factory:
    """Records the namespaces asked for, as NamespaceFactory.create names them."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, area: str, privileged: bool = False, shared: bool = False, **_: Any) -> str:
        name = f"nc-{area}-r1" + ("-priv" if privileged else "")
        self.created.append(name)
        return name


CLUSTER: Any = SimpleNamespace(kube=None)


def module_with(prestart: Any) -> ModuleType:
    module = ModuleType("test_fake")
    module.prestart = prestart  # type: ignore[attr-defined]
    return module


def test_a_namespace_given_as_a_function_is_created_at_first_use_and_once():
    factory = Factory()
    ws = Workloads(CLUSTER, lambda: factory.create("dns"))
    assert factory.created == []
    assert ws.namespace == "nc-dns-r1"
    assert ws.namespace == "nc-dns-r1"
    assert factory.created == ["nc-dns-r1"]


def test_a_prestart_that_uses_only_the_runs_namespace_makes_no_namespace_of_its_own():
    factory = Factory()
    seen: list[str] = []

    def prestart(stage: Stage) -> None:
        assert stage.run is not None
        seen.append(stage.run.namespace)

    _request(CLUSTER, factory, module_with(prestart), "crossnode", set(), "nc-preflight-r1")  # type: ignore[arg-type]
    assert seen == ["nc-preflight-r1"]
    assert factory.created == []


def test_a_prestart_that_puts_objects_in_its_module_namespace_makes_it():
    factory = Factory()
    _request(
        CLUSTER,
        factory,  # type: ignore[arg-type]
        module_with(lambda stage: stage.workloads.namespace),
        "headless",
        set(),
        "nc-preflight-r1",
    )
    assert factory.created == ["nc-headless-r1"]
