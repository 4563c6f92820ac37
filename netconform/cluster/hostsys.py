"""What the nodes change on the host itself, whatever their network namespaces and root folders: kernel settings
(not per network namespace), which every kubelet sets, and fixed folders, which the kubelets and containerd write
to. Recorded before the first kubelet starts, put back by `down`."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import config, paths

#: What the kubelet sets on start (pkg/kubelet/cm: setupKernelTunables), as on any node it runs on.
KEYS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)


def _file(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


#: The kubelet's device-plugin registration socket and checkpoint: a fixed host path, not under its --root-dir
#: (pkg/kubelet/cm/devicemanager: pluginapi.KubeletSocket), the same for every node's kubelet.
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
DEVICE_PLUGIN_SOCKET = DEVICE_PLUGINS / "kubelet.sock"
#: What the kubelets leave in it: their socket and the device manager's checkpoint.
KUBELET_FILES = frozenset({"kubelet.sock", "kubelet_internal_checkpoint"})
#: Where containerd 1.6's shims listen, whatever containerd's own state folder: a fixed host path (one socket per
#: pod, named by a hash of containerd's address and the pod; each shim removes its own when it ends).
SHIM_SOCKETS = Path("/run/containerd/s")
#: Where containerd's CNI library caches each pod interface's result (not configurable in containerd 1.6); a pod
#: sandbox that ends without a CNI DEL (every one still running at `down`) leaves its entries behind.
CNI_RESULTS = Path("/var/lib/cni/results")
#: Where every kubelet links each container's log (pkg/kubelet/kuberuntime: ContainerLogsDir, fixed); the links of
#: containers still there at `down` stay behind, pointing into the nodes' own folders.
CONTAINER_LOG_LINKS = Path("/var/log/containers")


@dataclass(frozen=True)
class FixedFolder:
    """A host folder the nodes use outside their own state: who writes there, and how their files are known."""

    path: Path
    maker: str
    #: Whether a file in it is one the nodes made.
    theirs: Callable[[Path], bool]
    #: `theirs` knows the nodes' files for certain (by the cluster's own paths in them): they are removed from the
    #: folder even when the host had it. Otherwise (known by name only) only from a folder the nodes made.
    certain: bool = False


def _kubelet_file(p: Path) -> bool:
    return p.parent == DEVICE_PLUGINS and p.name in KUBELET_FILES


def _our_cni_result(p: Path) -> bool:
    """A cached result whose pod network namespace is one of the nodes' (containerd keeps them under config.RUN)."""
    try:
        return p.parent == CNI_RESULTS and f'"{config.RUN}/' in p.read_text(errors="replace")
    except OSError:
        return False


def _our_log_link(p: Path) -> bool:
    """A link to a container log in a node's own folder."""
    try:
        return p.parent == CONTAINER_LOG_LINKS and p.is_symlink() and os.readlink(p).startswith(f"{paths.STATE}/")
    except OSError:
        return False


def fixed_folders() -> tuple[FixedFolder, ...]:
    return (
        FixedFolder(DEVICE_PLUGINS, "the nodes' kubelets", _kubelet_file),
        FixedFolder(SHIM_SOCKETS, "the nodes' containerd shims", lambda p: False),
        FixedFolder(CNI_RESULTS, "the nodes' containerd", _our_cni_result, certain=True),
        FixedFolder(CONTAINER_LOG_LINKS, "the nodes' kubelets", _our_log_link, certain=True),
    )


def snapshot_path() -> Path:
    return paths.STATE / "host-sysctls.json"


def created_path() -> Path:
    """Where `save` records, for each fixed folder, the outermost folder of its path that the host did not have."""
    return paths.STATE / "host-created.json"


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist (None: it exists)."""
    missing = None
    for f in (folder, *folder.parents):
        if f.exists():
            break
        missing = f
    return missing


def read(keys: tuple[str, ...] = KEYS) -> dict[str, str]:
    out = {}
    for key in keys:
        try:
            out[key] = _file(key).read_text().strip()
        except OSError:
            pass
    return out


def save() -> None:
    """Keep the host's values, once: a snapshot taken while a killed cluster's kubelet had changed them would keep
    the kubelet's values, so an existing one is left as it is."""
    if not snapshot_path().exists():
        snapshot_path().write_text(json.dumps(read(), indent=1))
    if not created_path().exists():
        created = {str(f.path): _first_missing(f.path) for f in fixed_folders()}
        doc = {"created": {k: str(v) for k, v in created.items() if v is not None}}
        created_path().write_text(json.dumps(doc, indent=1))


def created() -> dict[Path, Path]:
    """Fixed folder -> the outermost folder of it that the nodes made (as `save` recorded it)."""
    try:
        doc = json.loads(created_path().read_text())["created"]
    except (OSError, ValueError, KeyError):
        return {}
    if not isinstance(doc, dict):  # recorded by a version that knew only the kubelets' folder
        doc = {str(DEVICE_PLUGINS): doc} if doc else {}
    return {Path(k): Path(v) for k, v in doc.items()}


def restore() -> list[str]:
    """Put back every saved value that differs now, and remove each fixed folder the nodes made; return what was
    changed."""
    return _restore_sysctls() + _remove_created()


def _remove_created() -> list[str]:
    """The nodes' files in each fixed folder (those known for certain, from any folder; the rest only from a folder
    the nodes made), then each folder the nodes made if nothing else is in it (someone else's file keeps it, said)."""
    said = []
    made = created()
    for folder in fixed_folders():
        top = made.get(folder.path)
        if folder.certain and folder.path.is_dir():
            gone = [p for p in folder.path.iterdir() if folder.theirs(p)]
            for p in gone:
                p.unlink(missing_ok=True)
            if gone and (top is None or not top.exists()):
                said.append(f"removed {len(gone)} file(s) of {folder.maker} from {folder.path}")
        if top is None or not top.exists():
            continue
        found = {p for p in top.rglob("*") if not p.is_dir() or p.is_symlink()}
        others = {p for p in found if not folder.theirs(p)}
        if others:
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            listed = ", ".join(sorted(map(str, others))[:5]) + more
            said.append(f"left {top}: it holds files {folder.maker} did not make ({listed})")
            continue
        shutil.rmtree(top)
        said.append(f"removed {top} (made by {folder.maker})")
    return said


def _restore_sysctls() -> list[str]:
    try:
        saved = json.loads(snapshot_path().read_text())
    except (OSError, ValueError):
        return []
    changed = []
    for key, value in saved.items():
        now = read((key,)).get(key)
        if now is not None and now != value:
            _file(key).write_text(value)
            changed.append(f"restored host setting {key} {now} -> {value}")
    return changed
