"""The suite's least rights, from `manifests/rbac/clusterrole.yaml`: what the preflight checks and what
`netconform rbac` prints (the roles plus the bindings for a ServiceAccount or a user)."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from .errors import ClusterUnreachable, Forbidden
from .manifests import ROOT

if TYPE_CHECKING:
    from .kube import Kube

ROLE_FILE = ROOT / "rbac" / "clusterrole.yaml"
ROLE = "netconform"
PRIVILEGED_ROLE = "netconform-privileged"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str
    resource: str
    subresource: str = ""

    def __str__(self) -> str:
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {name}" + (f" ({self.group})" if self.group else "")


def roles() -> list[Obj]:
    return [d for d in yaml.safe_load_all(ROLE_FILE.read_text()) if d]


def permissions(role: str = ROLE) -> list[Permission]:
    """Every (verb, resource) the role grants, one by one."""
    doc = next(d for d in roles() if d["metadata"]["name"] == role)
    found: list[Permission] = []
    for rule in doc["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                resource, _, sub = res.partition("/")
                found.extend(Permission(verb, group, resource, sub) for verb in rule["verbs"])
    return found


#: The namespace the rules are listed for: one that does not exist, so that no RoleBinding adds to them. The suite's
#: namespaces do not exist yet either; what it may do there is what holds in every namespace.
UNBOUND_NAMESPACE_PREFIX = "netconform-rights-"


def rule_allows(rule: Obj, p: Permission) -> bool:
    """Whether one listed rule grants `p` on any object, matched as the RBAC authorizer matches: `*` or the exact
    verb and API group; `*`, `resource` or `resource/subresource` exactly, or `*/subresource` (never
    `resource/*`). A rule limited to named objects grants nothing here (the suite names objects it has not created
    yet)."""
    if rule.get("resourceNames"):
        return False
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    if "*" not in verbs and p.verb not in verbs:
        return False
    if "*" not in groups and p.group not in groups:
        return False
    combined = f"{p.resource}/{p.subresource}" if p.subresource else p.resource
    resources = rule.get("resources") or []
    return any(r in ("*", combined) or (p.subresource and r == f"*/{p.subresource}") for r in resources)


def missing_permissions(kube: Kube, wanted: list[Permission]) -> list[Permission]:
    """The permissions these credentials lack. One SelfSubjectRulesReview lists the rules that hold in a namespace
    no RoleBinding can name; each permission is matched against them. What they leave open is asked about one
    permission at a time (SelfSubjectAccessReviews, 8 at a time) only when the server says its list may be
    incomplete (an authorizer that cannot list rules, such as a webhook) or the review itself failed. With the
    API server far away this is one round trip where 60 reviews, 8 at a time, took eight."""
    try:
        status = kube.rules(UNBOUND_NAMESPACE_PREFIX + secrets.token_hex(4))
    except ClusterUnreachable:
        raise
    except Exception:  # refused, not served or failed: every permission is asked about one by one, as before
        status = {"incomplete": True}
    rules = status.get("resourceRules") or []
    open_ = [p for p in wanted if not any(rule_allows(r, p) for r in rules)]
    if not open_ or not (status.get("incomplete") or status.get("evaluationError")):
        return open_
    with ThreadPoolExecutor(max_workers=8) as pool:  # a few at a time: the client keeps 10 connections
        allowed = list(pool.map(lambda p: kube.allowed(p.verb, p.resource, p.group, p.subresource), open_))
    return [p for p, ok in zip(open_, allowed, strict=True) if not ok]


def preflight(kube: Kube) -> None:
    """Fail before anything is created, naming every permission of the suite's role that is missing."""
    missing = missing_permissions(kube, permissions())
    if missing:
        raise Forbidden(
            f"permission denied: the credentials lack {len(missing)} of the suite's rights: "
            + ", ".join(str(p) for p in missing)
            + "; `netconform rbac` prints the ClusterRole and a binding that grant them"
        )


def bindings(subject: Obj, privileged: bool) -> list[Obj]:
    """ClusterRoleBindings of the suite's role (and the privileged extras) to `subject`."""
    docs = []
    for role in (ROLE, PRIVILEGED_ROLE) if privileged else (ROLE,):
        name = subject["name"].replace(":", "-")
        docs.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{role}-{name}", "labels": {"app.kubernetes.io/name": "netconform"}},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [subject],
            }
        )
    return docs


def service_account_documents(namespace: str, name: str, privileged: bool) -> list[Obj]:
    """A ServiceAccount to run the suite as, the roles, and the bindings."""
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
    subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    return [sa, *roles(), *bindings(subject, privileged)]


def user_documents(user: str, privileged: bool) -> list[Obj]:
    subject = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}
    return [*roles(), *bindings(subject, privileged)]


def dump(docs: list[Obj]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
