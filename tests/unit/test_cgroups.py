"""Where the cluster's cgroups go on cgroup v1 (hybrid, this machine) and v2 hosts, read from made-up mount tables
and a made-up /sys/fs/cgroup: v2 has not run a cluster here, so its layout logic is proven by these alone."""

from pathlib import Path

import pytest

from netconform.cluster import cgroups
from netconform.cluster.cgroups import Layout

HYBRID = """cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0
cgroup /var/lib/other/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0"""
UNIFIED = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\nproc /proc proc rw 0 0"
UNIFIED_WITH_NAMED_V1 = (
    UNIFIED + "\ncgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0"
)
LEGACY = "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0"


def test_the_layout_is_read_from_the_mounts():
    hybrid = cgroups.parse(HYBRID)
    assert hybrid.version == "v1" and hybrid.unified == Path("/sys/fs/cgroup/unified")
    # One folder per hierarchy: the memory hierarchy mounted a second time elsewhere is the same hierarchy.
    assert hybrid.v1 == tuple(
        map(Path, ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd"))
    )
    assert hybrid.tracking == Path("/sys/fs/cgroup/unified/netconform")
    assert cgroups.parse(UNIFIED) == Layout("v2", Path("/sys/fs/cgroup"))
    # A v1 mount that names no controller (kept on some v2 hosts for old containers) does not make a host v1.
    assert cgroups.parse(UNIFIED_WITH_NAMED_V1).version == "v2"
    legacy = cgroups.parse(LEGACY)
    assert legacy.version == "v1" and legacy.unified is None and legacy.tracking is None


def test_a_node_root_is_in_every_v1_hierarchy_but_one_folder_on_v2():
    assert cgroups.parse(HYBRID).node_roots("nc-node-2") == [
        Path("/sys/fs/cgroup/cpu,cpuacct/nc-node-2"),
        Path("/sys/fs/cgroup/memory/nc-node-2"),
        Path("/sys/fs/cgroup/systemd/nc-node-2"),
        Path("/sys/fs/cgroup/unified/nc-node-2"),  # the kubelet makes it there too, and down removes it
    ]
    assert cgroups.parse(UNIFIED).node_roots("nc-node-2") == [Path("/sys/fs/cgroup/nc-node-2")]


def fake_v2(root: Path, offered: str, enabled: str = "") -> Layout:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(offered + "\n")
    (root / "cgroup.subtree_control").write_text(enabled + "\n")
    return Layout("v2", root)


def written(control: Path) -> list[str]:
    return control.read_text().split()


def test_on_v2_the_node_gets_what_the_kubelet_needs_delegated_at_the_root_and_below_it(tmp_path):
    layout = fake_v2(tmp_path / "cgroup", "cpuset cpu io memory hugetlb pids rdma misc", enabled="memory")
    cgroups.prepare_node(layout, "nc-node-1")
    # At the root: each controller the kubelet supports and the host offers, one write each; memory was on already;
    # rdma and misc are not the kubelet's.
    assert written(tmp_path / "cgroup" / "cgroup.subtree_control") == [
        "memory",
        "+cpu",
        "+cpuset",
        "+hugetlb",
        "+io",
        "+pids",
    ]
    node_control = tmp_path / "cgroup" / "nc-node-1" / "cgroup.subtree_control"
    assert written(node_control) == ["+cpu", "+cpuset", "+hugetlb", "+io", "+memory", "+pids"]


def test_on_v2_a_controller_the_host_does_not_offer_is_left_out_and_named_by_the_preflight(tmp_path):
    layout = fake_v2(tmp_path / "cgroup", "cpuset cpu memory pids")
    cgroups.prepare_node(layout, "nc-node-1")
    assert written(tmp_path / "cgroup" / "cgroup.subtree_control") == ["+cpu", "+cpuset", "+memory", "+pids"]
    assert cgroups.problems(layout) == []
    (note,) = cgroups.notes(layout)
    assert "has not run a cluster in the project's CI" in note
    # A hybrid host's cgroup2 offers nothing (the v1 hierarchies hold every controller): told, before any build.
    (problem,) = cgroups.problems(fake_v2(tmp_path / "held", ""))
    assert "does not offer the controllers cpu, cpuset, memory, pids" in problem
    assert cgroups.problems(cgroups.parse(HYBRID)) == [] and cgroups.notes(cgroups.parse(HYBRID)) == []


def test_on_v2_a_refused_delegation_names_the_controller_and_the_file(tmp_path):
    layout = fake_v2(tmp_path / "cgroup", "cpu memory")
    (tmp_path / "cgroup" / "cgroup.subtree_control").unlink()
    (tmp_path / "cgroup" / "cgroup.subtree_control").mkdir()  # any write fails
    with pytest.raises(RuntimeError, match=r"could not enable the cpu controller in .*cgroup.subtree_control"):
        cgroups.prepare_node(layout, "nc-node-1")


def test_on_v1_the_node_root_is_made_in_every_hierarchy_with_the_parent_cpuset(tmp_path):
    cpuset, memory = tmp_path / "cpuset", tmp_path / "memory"
    for h in (cpuset, memory):
        h.mkdir()
    (cpuset / "cpuset.cpus").write_text("0-1\n")
    (cpuset / "cpuset.mems").write_text("0\n")
    cgroups.prepare_node(Layout("v1", None, (cpuset, memory)), "nc-node-3")
    assert (cpuset / "nc-node-3" / "cpuset.cpus").read_text() == "0-1\n"
    assert (cpuset / "nc-node-3" / "cpuset.mems").read_text() == "0\n"
    assert (memory / "nc-node-3").is_dir() and not list((memory / "nc-node-3").iterdir())


def test_a_nodes_cgroups_are_found_deepest_first_with_their_processes_and_removed(tmp_path):
    layout = Layout("v2", tmp_path)
    pod = tmp_path / "nc-node-1" / "kubepods" / "besteffort" / "pod1"
    pod.mkdir(parents=True)
    (pod / "cgroup.procs").write_text("41\n42\n")
    (tmp_path / "nc-node-1" / "kubepods" / "cgroup.procs").write_text("7\n")
    (tmp_path / "nc-node-10").mkdir()  # another node's, not a child
    found = cgroups.dirs(layout, "nc-node-1")
    assert found[0] == pod and found[-1] == tmp_path / "nc-node-1" and len(found) == 4
    assert cgroups.pids(found) == [7, 41, 42]
    for f in tmp_path.rglob("cgroup.procs"):
        f.unlink()  # a real cgroup folder goes with its files; these are plain folders
    assert cgroups.remove(found) == 4 and not (tmp_path / "nc-node-1").exists() and (tmp_path / "nc-node-10").exists()
    assert cgroups.tree(None) == [] and cgroups.tree(tmp_path / "gone") == []
