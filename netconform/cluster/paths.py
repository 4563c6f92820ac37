"""Where the local cluster keeps its cache and its state: fixed places outside any checkout."""

from __future__ import annotations

import os
from pathlib import Path

#: Build cache (Go caches, wrapper modules, binaries, image tarballs). Survives `cluster down`.
CACHE = Path(os.environ.get("NETCONFORM_CACHE", "/var/cache/netconform"))
#: Runtime state of the running cluster (PKI, configs, logs, pid files). Removed by `cluster down`.
STATE = Path(os.environ.get("NETCONFORM_STATE", "/var/lib/netconform"))

GOMODCACHE = CACHE / "go" / "mod"
GOCACHE = CACHE / "go" / "build"
LOGS = STATE / "logs"
KUBECONFIG = STATE / "admin.kubeconfig"
