"""The suite's settings: command line over environment over `[tool.pytest]` ini over defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .areas import NAMES as AREA_NAMES
from .errors import UsageError

PROVIDERS = ("kubeconfig", "kind", "local")
DEFAULT_IMAGE = "netconform.local/toolbox:v1"


@dataclass(frozen=True)
class Option:
    name: str  # attribute on Settings
    flag: str  # command-line flag
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return "NETCONFORM_" + self.name.upper()

    @property
    def ini(self) -> str:
        return "netconform_" + self.name


def _provider(v: str) -> str:
    if v not in PROVIDERS:
        raise ValueError(f"must be one of {', '.join(PROVIDERS)}")
    return v


def _require(v: str) -> frozenset[str]:
    items = frozenset(x.strip() for x in v.split(",") if x.strip())
    unknown = sorted(items - set(AREA_NAMES) - {"all"})
    if unknown:
        raise ValueError(f"unknown area {', '.join(unknown)}; known: {', '.join(AREA_NAMES)}, all")
    return frozenset(AREA_NAMES) if "all" in items else items


def _positive_float(v: str) -> float:
    f = float(v)
    if not f > 0:
        raise ValueError("must be a number above 0")
    return f


def _nodes(v: str) -> int:
    n = int(v)
    if not 1 <= n <= 4:
        raise ValueError("must be between 1 and 4")
    return n


def _nonneg_int(v: str) -> int:
    n = int(v)
    if n < 0:
        raise ValueError("must be 0 or more")
    return n


REGISTRY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)?$")


def _registry(v: str) -> str:
    """A registry host (with port and path, as in `mirror.example:5000/netconform`), no scheme or tag."""
    v = v.strip().rstrip("/")
    if not REGISTRY.match(v):
        raise ValueError("must be a registry host, optionally with :port and /path (e.g. mirror.example:5000/team)")
    return v


OPTIONS: tuple[Option, ...] = (
    Option(
        "provider",
        "--provider",
        "where the cluster comes from: kubeconfig (default), kind, local",
        "kubeconfig",
        _provider,
    ),
    Option("kube_config", "--kube-config", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)"),
    Option("kube_context", "--kube-context", "kubeconfig context (default: the current one)"),
    Option(
        "require",
        "--require",
        "comma-separated areas (or 'all') that must run: an unsupported check of these fails instead of skipping",
        frozenset(),
        _require,
    ),
    Option(
        "image_registry",
        "--image-registry",
        "rewrite every test image to this registry (air-gapped mirrors)",
        None,
        _registry,
    ),
    Option("image", "--image", "the test image (nc-echo, agnhost, dig, curl, openssl, ip, nc)", DEFAULT_IMAGE),
    Option("ingress_class", "--ingress-class", "IngressClass to test (default: the default class, or the only one)"),
    Option(
        "ingress_service",
        "--ingress-service",
        "namespace/name of the ingress controller's Service (default: found by the controller profile)",
    ),
    Option(
        "ingress_domain", "--ingress-domain", "DNS suffix of the test hosts used in Ingress rules", "netconform.test"
    ),
    Option(
        "lb_wait",
        "--lb-wait",
        "seconds a LoadBalancer Service may take to get an address (cloud provisioning)",
        180.0,
        _positive_float,
    ),
    Option("timeout_scale", "--timeout-scale", "multiply every deadline by this factor", 1.0, _positive_float),
    Option("external_name", "--external-name", "target of the ExternalName check (default: the API Service FQDN)"),
    Option("acme_server", "--acme-server", "ACME directory URL for the cert-manager ACME check"),
    Option("min_cert_days", "--min-cert-days", "days of validity a served certificate must have left", 7, _nonneg_int),
    Option("cni_conf_dir", "--cni-conf-dir", "CNI configuration directory on the nodes", "/etc/cni/net.d"),
    Option("cni_bin_dir", "--cni-bin-dir", "CNI plugin directory on the nodes", "/opt/cni/bin"),
    Option(
        "node_sample",
        "--node-sample",
        "check nodes and node pairs on K nodes spread evenly over the sorted names (0: every node)",
        0,
        _nonneg_int,
    ),
    Option("local_nodes", "--local-nodes", "nodes of the local cluster (--provider local), 1 to 4", 1, _nodes),
    Option("kind_bin", "--kind-binary", "kind executable for --provider kind (default: kind on PATH)"),
)


@dataclass(frozen=True)
class Settings:
    provider: str = "kubeconfig"
    kube_config: str | None = None
    kube_context: str | None = None
    require: frozenset[str] = field(default_factory=frozenset)
    image_registry: str | None = None
    image: str = DEFAULT_IMAGE
    ingress_class: str | None = None
    ingress_service: str | None = None
    ingress_domain: str = "netconform.test"
    lb_wait: float = 180.0
    timeout_scale: float = 1.0
    external_name: str | None = None
    acme_server: str | None = None
    min_cert_days: int = 7
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dir: str = "/opt/cni/bin"
    node_sample: int = 0
    local_nodes: int = 1
    kind_bin: str | None = None
    #: Where each value came from (cli, env, ini, default), for the report header.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def deadline(self, seconds: float) -> float:
        return seconds * self.timeout_scale


def resolve(
    cli: Mapping[str, Any], env: Mapping[str, str] = os.environ, ini: Mapping[str, Any] | None = None
) -> Settings:
    """Pick each option from the first of: command line, environment, ini, default; validate it."""
    ini = ini or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        for source, raw in (("cli", cli.get(opt.name)), ("env", env.get(opt.env)), ("ini", ini.get(opt.ini))):
            if raw not in (None, ""):
                try:
                    values[opt.name] = opt.parse(str(raw))
                except ValueError as e:
                    where = {"cli": opt.flag, "env": f"${opt.env}", "ini": f"ini {opt.ini}"}[source]
                    raise UsageError(f"{where}: {e} (given: {raw!r})") from None
                sources[opt.name] = source
                break
        else:
            values[opt.name] = opt.default
            sources[opt.name] = "default"
    return Settings(**values, sources=sources)
