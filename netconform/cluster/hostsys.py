"""What every node's kubelet changes on the host itself, whatever its network namespace and root folder: kernel
settings (not per network namespace) and one fixed folder. Recorded before the first kubelet starts, put back by
`down`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import paths

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


def snapshot_path() -> Path:
    return paths.STATE / "host-sysctls.json"


def created_path() -> Path:
    """Where `save` records the first folder of DEVICE_PLUGINS the host did not have (the kubelets make it)."""
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
        missing = _first_missing(DEVICE_PLUGINS)
        created_path().write_text(json.dumps({"created": str(missing) if missing else None}))


def restore() -> list[str]:
    """Put back every saved value that differs now, and remove the kubelets' folder if they made it; return what was
    changed."""
    return _restore_sysctls() + _remove_created()


def _remove_created() -> list[str]:
    """The folder the kubelets made, if it holds nothing but theirs (someone else's file there keeps it, said)."""
    try:
        created = json.loads(created_path().read_text())["created"]
    except (OSError, ValueError, KeyError):
        return []
    if not created or not Path(created).exists():
        return []
    top = Path(created)
    found = {p for p in top.rglob("*") if not p.is_dir()}
    theirs = {p for p in found if p.parent == DEVICE_PLUGINS and p.name in KUBELET_FILES}
    if found - theirs:
        return [f"left {top}: it holds files the kubelets did not make ({', '.join(sorted(map(str, found - theirs)))})"]
    shutil.rmtree(top)
    return [f"removed {top} (made by the nodes' kubelets)"]


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
