"""Where the cluster comes from: an existing kubeconfig, a kind cluster (pytest-kind), or the local cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import NetconformError, UsageError
from .settings import Settings

KIND_CONFIG = Path(__file__).resolve().parent.parent / "manifests" / "kind" / "kind-config.yaml"
KIND_CLUSTER_NAME = "netconform"


@dataclass(frozen=True)
class Provided:
    provider: str
    kubeconfig: str | None
    context: str | None


def provide(settings: Settings) -> Provided:
    if settings.provider == "kubeconfig":
        return Provided("kubeconfig", settings.kube_config, settings.kube_context)
    if settings.provider == "local":
        return Provided("local", local_kubeconfig(settings.local_nodes), None)
    return Provided("kind", str(kind_create(settings)), None)


def local_kubeconfig(nodes: int) -> str:
    if os.geteuid() != 0:
        raise UsageError("--provider local boots a cluster on this host and needs root")
    from .cluster import lifecycle
    from .cluster.procs import ComponentFailed

    try:
        return str(lifecycle.up(nodes=nodes, out=lambda m: print(f"netconform local cluster: {m}", flush=True)))
    except (ComponentFailed, RuntimeError, OSError) as e:
        raise NetconformError(
            f"the local cluster did not come up: {str(e).splitlines()[0]} (full log: `netconform cluster status`)"
        ) from None


def kind_binary(settings: Settings) -> Path:
    found = settings.kind_bin or shutil.which("kind")
    if not found or not Path(found).exists():
        # pytest-kind would download kind from the internet; this suite never does.
        raise UsageError("--provider kind needs the `kind` executable on PATH (or --kind-binary)")
    return Path(found)


def kind_cluster(settings: Settings):  # type: ignore[no-untyped-def]
    from pytest_kind import KindCluster

    kubectl = shutil.which("kubectl")
    return KindCluster(
        KIND_CLUSTER_NAME, kind_path=kind_binary(settings), kubectl_path=Path(kubectl) if kubectl else None
    )


def kind_create(settings: Settings) -> Path:
    """Create (or reuse) the kind cluster with the suite's kind config; return its kubeconfig."""
    cluster = kind_cluster(settings)
    try:
        cluster.create(config_file=KIND_CONFIG)
    except subprocess.CalledProcessError as e:
        raise NetconformError(f"kind failed: `{' '.join(map(str, e.cmd))}` exited {e.returncode}") from None
    return Path(cluster.kubeconfig_path)
