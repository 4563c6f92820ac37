"""The host's kernel settings the kubelet changes (they are not per network namespace): saved before the first
kubelet starts, put back by `down`."""

from __future__ import annotations

import json
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


def snapshot_path() -> Path:
    return paths.STATE / "host-sysctls.json"


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


def restore() -> list[str]:
    """Put back every saved value that differs now; return what was changed."""
    try:
        saved = json.loads(snapshot_path().read_text())
    except (OSError, ValueError):
        return []
    changed = []
    for key, value in saved.items():
        now = read((key,)).get(key)
        if now is not None and now != value:
            _file(key).write_text(value)
            changed.append(f"{key} {now} -> {value}")
    return changed
