"""Report building: the header lines and cluster-info.json from detected capabilities (pure functions)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..capabilities import ClusterInfo


def header_lines(info: ClusterInfo) -> list[str]:
    nodes = ", ".join(
        f"{n.name} ({n.internal_ip or '?'}{'' if n.schedulable else ', unschedulable'})" for n in info.nodes
    )
    classes = (
        ", ".join(f"{c.name} ({c.controller}{', default' if c.default else ''})" for c in info.ingress_classes)
        or "none"
    )
    return [
        f"netconform: provider {info.provider}, server {info.server}"
        + (f", context {info.context}" if info.context else ""),
        f"netconform: Kubernetes {info.version}; {len(info.nodes)} node(s): {nodes or 'none'}",
        f"netconform: DNS {info.dns_service or 'none'} {info.dns_service_ip or ''}, domain {info.cluster_domain}; "
        f"IngressClasses: {classes}; cert-manager: {'yes' if info.cert_manager else 'no'}",
    ]


def cluster_info_document(info: ClusterInfo, run_id: str, extra: dict[str, Any] | None = None) -> str:
    doc = {"run": run_id, **asdict(info), **(extra or {})}
    return json.dumps(doc, indent=2, sort_keys=True)
