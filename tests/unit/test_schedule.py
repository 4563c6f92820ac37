"""Scheduling and sampling decisions, from plain inputs (no cluster)."""

from __future__ import annotations

from types import SimpleNamespace

from fixtures import schedule
from fixtures.cluster import sample_nodes
from fixtures.namespaces import DIST_INPUT, modules_split
from fixtures.schedule import module_order
from netconform import areas


def test_most_expensive_modules_first_and_long_lead_ones_last():
    modules = [("a.py", False, 0.0), ("cert.py", True, 0.0), ("b.py", False, 0.0), ("c.py", False, 0.0)]
    costs = {"a.py": 1.0, "b.py": 9.0, "cert.py": 30.0}
    assert module_order(modules, costs) == ["b.py", "a.py", "c.py", "cert.py"]
    assert module_order(modules, {}) == ["a.py", "b.py", "c.py", "cert.py"]  # no cost at all: collection order


def test_a_first_run_orders_by_the_declared_costs_and_a_recorded_cost_wins():
    """A first run (a fresh clone, an admin's one run against a new cluster) has no recorded costs: without the
    declared ones it ran the modules in file-name order, the NetworkPolicy module tenth of thirteen."""
    modules = [("cheap.py", False, 2.0), ("cert.py", True, 30.0), ("policy.py", False, 12.0)]
    assert module_order(modules, {}) == ["policy.py", "cheap.py", "cert.py"]
    assert module_order(modules, {"cheap.py": 20.0}) == ["cheap.py", "policy.py", "cert.py"]


def test_every_area_declares_what_its_module_costs():
    assert [a.name for a in areas.AREAS if a.cost <= 0] == []


def test_the_projects_own_tests_keep_their_written_order_whatever_they_cost():
    """The integration tests take the cluster down in their last module: ordering them by cost once ran that module
    first (a second `make test` on one checkout, where the first had recorded their costs)."""
    ids = ["tests/integration/test_2_suite.py::a", "tests/integration/test_4_down.py::b"]
    items = [SimpleNamespace(nodeid=i) for i in ids]
    costs = {"tests/integration/test_4_down.py": 90.0, "tests/integration/test_2_suite.py": 60.0}
    schedule.pytest_collection_modifyitems(SimpleNamespace(workerinput={schedule.WORKER_INPUT: costs}), items)
    assert [it.nodeid for it in items] == ids
    checks = [SimpleNamespace(nodeid=f"conformance/test_{m}.py::x", iter_markers=list) for m in ("dns", "cni")]
    schedule.pytest_collection_modifyitems(
        SimpleNamespace(workerinput={schedule.WORKER_INPUT: {"conformance/test_cni.py": 5.0}}), checks
    )
    assert [it.nodeid for it in checks] == ["conformance/test_cni.py::x", "conformance/test_dns.py::x"]


def test_only_modules_whose_checks_all_passed_record_their_cost():
    """A module under a fault spends its time waiting out deadlines (or ends unsupported at once): recorded, it
    reordered the next run (CI: the NetworkPolicy module, 65 s under a broken Service proxy, then queued behind
    another long module on one worker)."""
    spent = {"conformance/test_a.py": 12.345, "conformance/test_b.py": 65.0, "conformance/test_c.py": 0.05}
    got = schedule.recordable(spent, {"conformance/test_b.py", "conformance/test_c.py"})
    assert got == {"conformance/test_a.py": 12.35}


def test_a_worker_knows_when_modules_are_split_across_workers():
    """xdist sets a worker's own dist option to "no"; the controller's mode is what counts."""
    worker = lambda dist: SimpleNamespace(workerinput={DIST_INPUT: dist}, option=SimpleNamespace(dist="no"))  # noqa: E731
    assert modules_split(worker("load")) and modules_split(worker("worksteal"))
    assert not modules_split(worker("loadfile")) and not modules_split(worker("no"))
    controller = SimpleNamespace(option=SimpleNamespace(dist="load"))
    assert modules_split(controller)


def test_node_sample_is_spread_and_reproducible():
    names = [f"n{i:03d}" for i in range(100)]
    assert sample_nodes(names, 0) == names
    assert sample_nodes(names, 3) == ["n000", "n050", "n099"] == sample_nodes(list(reversed(names)), 3)
    assert sample_nodes(names[:2], 5) == names[:2]
