"""Ingress controller profiles: what the suite may expect of a controller, chosen by IngressClass spec.controller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .kube import Kube


@dataclass(frozen=True)
class Profile:
    name: str
    controllers: tuple[str, ...]
    #: Label selectors that find the controller's Service, tried in order.
    service_selectors: tuple[str, ...]
    #: Annotations that make an Ingress with a TLS section redirect HTTP to HTTPS (None: not supported).
    redirect_annotations: dict[str, str] | None


# Traefik's ingress-nginx provider serves IngressClasses with controller k8s.io/ingress-nginx and implements
# the nginx annotations, so its Service selector is listed under the ingress-nginx profile too.
PROFILES = (
    Profile(
        "ingress-nginx",
        ("k8s.io/ingress-nginx",),
        (
            "app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller",
            "app.kubernetes.io/name=traefik",
        ),
        {"nginx.ingress.kubernetes.io/ssl-redirect": "true"},
    ),
    Profile("traefik", ("traefik.io/ingress-controller",), ("app.kubernetes.io/name=traefik",), None),
    Profile(
        "haproxy",
        ("haproxy.org/ingress-controller", "haproxy-ingress.github.io/controller"),
        ("app.kubernetes.io/name=kubernetes-ingress", "app.kubernetes.io/name=haproxy-ingress"),
        {"haproxy.org/ssl-redirect": "true"},
    ),
)
UNKNOWN = Profile("unknown", (), (), None)


def profile_for(controller: str) -> Profile:
    return next((p for p in PROFILES if controller in p.controllers), UNKNOWN)


@dataclass(frozen=True)
class ControllerService:
    namespace: str
    name: str
    cluster_ip: str
    http_port: int
    https_port: int | None


def _ports(svc: dict[str, Any]) -> tuple[int | None, int | None]:
    http = https = None
    for p in svc["spec"].get("ports") or []:
        if p["port"] == 80 or p.get("name") in ("http", "web"):
            http = http or p["port"]
        if p["port"] == 443 or p.get("name") in ("https", "websecure"):
            https = https or p["port"]
    return http, https


def find_controller_service(kube: Kube, profile: Profile, override: str | None = None) -> ControllerService | None:
    """The Service in front of the ingress controller: `--ingress-service ns/name`, or found by the profile."""
    candidates = []
    if override:
        ns, _, name = override.partition("/")
        svc = kube.get("v1", "Service", name, ns)
        candidates = [svc] if svc else []
    else:
        for selector in profile.service_selectors:
            candidates = [
                s
                for s in kube.list_objects("v1", "Service", selector=selector)
                if s["spec"].get("clusterIP") not in (None, "None")
            ]
            if candidates:
                break
    for svc in candidates:
        http, https = _ports(svc)
        if http:
            return ControllerService(
                svc["metadata"]["namespace"], svc["metadata"]["name"], svc["spec"]["clusterIP"], http, https
            )
    return None
