"""Where the local cluster keeps its cache and its state: fixed places outside any checkout."""

from __future__ import annotations

import os
from pathlib import Path

#: Build cache (Go caches, wrapper modules, binaries, image tarballs). Survives `cluster down`.
CACHE = Path(os.environ.get("NETCONFORM_CACHE") or "/var/cache/netconform")
#: Runtime state of the running cluster (PKI, configs, logs, pid files). Removed by `cluster down`.
STATE = Path(os.environ.get("NETCONFORM_STATE") or "/var/lib/netconform")

GOMODCACHE = CACHE / "go" / "mod"
GOCACHE = CACHE / "go" / "build"
LOGS = STATE / "logs"
KUBECONFIG = STATE / "admin.kubeconfig"

#: Written into STATE when `up` creates it: `down` removes only a folder that carries it.
MARKER = ".netconform-cluster"


def problems() -> list[str]:
    """Folders the cluster may not use: relative (an empty or odd variable), the root, or a shallow system path."""
    found = []
    for name, path in (("NETCONFORM_CACHE", CACHE), ("NETCONFORM_STATE", STATE)):
        if not path.is_absolute() or len(path.parts) < 3:
            found.append(f"{name}={path} must be an absolute path at least two folders deep (e.g. /var/lib/netconform)")
    return found
