"""The host's cgroup layout, and the cluster's cgroups in it: one tracking cgroup that every process the cluster
starts joins before it runs, and one cgroupRoot per node for that node's kubelet (its pods' cgroups go below).

- cgroup v1 (hybrid or legacy, this machine): the node's root exists in every v1 hierarchy, since the kubelet
  refuses to start otherwise, with cpuset.cpus/mems copied from the parent (an empty cpuset cannot hold tasks);
  on a hybrid host the kubelet also makes it under the cgroup2 mount, and the tracking cgroup lives there.
- cgroup v2 (unified only): the node's root is one folder of the unified hierarchy, with the controllers the
  kubelet needs (what it supports and the host offers) enabled for it in the hierarchy root's
  `cgroup.subtree_control`, and below it in its own. The kubelet checks exactly that before it starts.

Everything here takes the layout and folders as arguments, so the v2 logic is unit-tested with a made-up
/sys/fs/cgroup; only the v1 hybrid layout has run a cluster (see the README)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Controllers the kubelet's cgroupfs manager uses on v2: it requires each one the host offers to be enabled at its
#: cgroupRoot (cgroup_manager_linux.go, getSupportedUnifiedControllers).
KUBELET_V2_CONTROLLERS = ("cpu", "cpuset", "hugetlb", "io", "memory", "pids")
#: Without these a node cannot account or limit its pods at all: a v2 host that does not offer them is refused.
REQUIRED_V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids")
TRACKING = "netconform"
#: The kernel's v1 controllers: a v1 mount with none of them (`name=systemd`, with `xattr` and the like) holds none.
V1_CONTROLLERS = frozenset(
    {"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "misc", "net_cls", "net_prio"}
    | {"perf_event", "pids", "rdma"}
)


@dataclass(frozen=True)
class Layout:
    version: str  # "v1" (some v1 controller hierarchy is mounted: hybrid or legacy) or "v2" (unified only)
    unified: Path | None  # where the cgroup2 hierarchy is mounted, if anywhere
    v1: tuple[Path, ...] = ()  # mount points of the v1 hierarchies

    @property
    def tracking(self) -> Path | None:
        """The cgroup every process the cluster starts is put in: what it forks stays there (containerd's shims),
        so `down` ends exactly these. None on a host without a cgroup2 mount."""
        return self.unified / TRACKING if self.unified else None

    def node_roots(self, node_name: str) -> list[Path]:
        """Where a node's cgroupRoot is (or will be) on this host."""
        if self.version == "v2":
            return [self.unified / node_name] if self.unified else []
        return [h / node_name for h in self.v1] + ([self.unified / node_name] if self.unified else [])


def parse(mounts: str) -> Layout:
    """From /proc/self/mounts. A v1 mount that names no controller (only `name=systemd`, kept on some v2 hosts for
    old containers) does not make a host v1."""
    unified = None
    v1: dict[str, Path] = {}  # by the hierarchy's options: a hierarchy mounted twice is one hierarchy
    has_v1_controller = False
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        where = Path(parts[1].replace("\\040", " "))
        if parts[2] == "cgroup2" and unified is None:
            unified = where
        elif parts[2] == "cgroup":
            options = sorted(o for o in parts[3].split(",") if o not in ("rw", "ro", "relatime", "nosuid", "nodev"))
            v1.setdefault(",".join(options), where)
            has_v1_controller |= any(o in V1_CONTROLLERS for o in options)
    if has_v1_controller:
        return Layout("v1", unified, tuple(sorted(v1.values())))
    return Layout("v2", unified)


def host() -> Layout:
    return parse(Path("/proc/self/mounts").read_text())


def _controllers(folder: Path, name: str = "cgroup.controllers") -> set[str]:
    try:
        return set((folder / name).read_text().split())
    except OSError:
        return set()


def problems(layout: Layout) -> list[str]:
    """What stops the nodes' kubelets on this layout, each with what to do."""
    if layout.version == "v1":
        return []
    if layout.unified is None:
        return ["no cgroup hierarchy is mounted (neither v1 nor cgroup2): the kubelets cannot start"]
    missing = [c for c in REQUIRED_V2_CONTROLLERS if c not in _controllers(layout.unified)]
    if missing:
        return [
            f"the cgroup2 hierarchy at {layout.unified} does not offer the controllers {', '.join(missing)} "
            f"(see {layout.unified / 'cgroup.controllers'}): they are held by a v1 hierarchy or not delegated to "
            "this cgroup (a container needs its cgroup delegated); the nodes' kubelets need them"
        ]
    return []


def notes(layout: Layout) -> list[str]:
    """What a user should know about this layout before relying on it (not a problem)."""
    if layout.version == "v2":
        return [
            f"cgroup v2 host: the nodes run under {layout.unified}/nc-node-N with their controllers delegated; this "
            "layout is unit-tested but has not run a cluster in the project's CI (a cgroup v1 hybrid host)"
        ]
    return []


def prepare_node(layout: Layout, node_name: str) -> None:
    """Make the node's cgroupRoot so its kubelet starts (see the module's text for each layout)."""
    if layout.version == "v2":
        assert layout.unified is not None
        wanted = [c for c in KUBELET_V2_CONTROLLERS if c in _controllers(layout.unified)]
        root = layout.unified / node_name
        _enable(layout.unified, wanted)
        root.mkdir(exist_ok=True)
        _enable(root, wanted)
        return
    for hierarchy in layout.v1:
        d = hierarchy / node_name
        d.mkdir(exist_ok=True)
        if {"cpuset.cpus", "cpuset.mems"} <= {p.name for p in hierarchy.glob("cpuset.*")}:
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((hierarchy / f).read_text())


def _enable(folder: Path, controllers: list[str]) -> None:
    """Enable controllers for a cgroup's children. One write per controller: the kernel refuses the whole line if
    one fails, and the error should name it."""
    control = folder / "cgroup.subtree_control"
    enabled = _controllers(folder, "cgroup.subtree_control")
    for c in controllers:
        if c in enabled:
            continue
        try:
            with control.open("a") as f:  # as `echo +cpu >> cgroup.subtree_control`
                f.write(f"+{c}\n")
        except OSError as e:
            raise RuntimeError(
                f"could not enable the {c} controller in {control} ({e.strerror}); a cgroup with processes in it "
                "cannot pass controllers down (cgroup v2's no-internal-processes rule): run from the hierarchy's "
                "root or a delegated cgroup"
            ) from None


def dirs(layout: Layout, node_name: str) -> list[Path]:
    """Every cgroup folder of a node, deepest first (the order rmdir needs)."""
    found = {d for root in layout.node_roots(node_name) for d in tree(root)}
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def pids(folders: list[Path]) -> list[int]:
    """Every process in these cgroups."""
    found: set[int] = set()
    for d in folders:
        try:
            found.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        except OSError:
            pass
    return sorted(found)


def remove(folders: list[Path]) -> int:
    """rmdir each (deepest first); how many went. One still in use stays."""
    removed = 0
    for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()
            removed += 1
        except OSError:
            pass
    return removed


def tree(folder: Path | None) -> list[Path]:
    """A cgroup and every cgroup below it. os.walk, not rglob: the kubelet may still be removing pod cgroups while
    this looks (a folder gone between listing and reading is skipped, not an error)."""
    if folder is None or not folder.is_dir():
        return []
    return [Path(top) for top, _, _ in os.walk(folder, onerror=lambda e: None)]
