"""The rights check: the server's listed rules matched as RBAC matches them, and reviews one by one only where the
list may be incomplete (a fake client stands in for the API server: this is the matching and the fallback)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from netconform.errors import ClusterUnreachable, Forbidden
from netconform.rbac import Permission, missing_permissions, permissions, rule_allows

EXEC = Permission("create", "", "pods", "exec")
LIST_PODS = Permission("list", "", "pods")
PATCH_INGRESS = Permission("patch", "networking.k8s.io", "ingresses")


def rule(verbs: list[str], groups: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources, **extra}


def test_a_rule_grants_its_verbs_groups_and_resources_exactly() -> None:
    pods = rule(["get", "list"], [""], ["pods"])
    assert rule_allows(pods, LIST_PODS)
    assert not rule_allows(pods, Permission("delete", "", "pods"))
    assert not rule_allows(pods, Permission("list", "apps", "pods"))
    assert not rule_allows(pods, Permission("list", "", "services"))


def test_stars_grant_every_verb_group_and_resource_subresources_included() -> None:
    assert rule_allows(rule(["*"], ["*"], ["*"]), EXEC)
    assert rule_allows(rule(["*"], ["networking.k8s.io"], ["ingresses"]), PATCH_INGRESS)


def test_a_subresource_is_granted_by_its_own_name_or_star_slash_name_only() -> None:
    assert rule_allows(rule(["create"], [""], ["pods/exec"]), EXEC)
    assert rule_allows(rule(["create"], [""], ["*/exec"]), EXEC)
    assert not rule_allows(rule(["create"], [""], ["pods"]), EXEC), "the resource does not grant its subresources"
    assert not rule_allows(rule(["create"], [""], ["pods/*"]), EXEC), "RBAC has no resource/* form"
    assert not rule_allows(rule(["create"], [""], ["pods/exec"]), Permission("create", "", "pods"))


def test_a_rule_limited_to_named_objects_grants_nothing_the_suite_needs() -> None:
    assert not rule_allows(rule(["list"], [""], ["pods"], resourceNames=["one"]), LIST_PODS)


@dataclass
class FakeKube:
    """Answers the rules review with `status` (or refuses it) and each access review from `granted`."""

    status: dict[str, Any] | None
    granted: set[Permission] = field(default_factory=set)
    reviews: list[Permission] = field(default_factory=list)
    listed_for: list[str] = field(default_factory=list)

    def rules(self, namespace: str) -> dict[str, Any]:
        self.listed_for.append(namespace)
        if self.status is None:
            raise Forbidden("selfsubjectrulesreviews: forbidden")
        return self.status

    def allowed(self, verb: str, resource: str, group: str = "", subresource: str = "") -> bool:
        p = Permission(verb, group, resource, subresource)
        self.reviews.append(p)
        return p in self.granted


def test_a_complete_list_decides_alone_in_one_request() -> None:
    kube = FakeKube({"resourceRules": [rule(["list"], [""], ["pods"])], "incomplete": False})
    assert missing_permissions(kube, [LIST_PODS, EXEC]) == [EXEC]  # type: ignore[arg-type]
    assert kube.reviews == [] and len(kube.listed_for) == 1


def test_rules_are_listed_for_a_namespace_no_rolebinding_names() -> None:
    kube = FakeKube({"resourceRules": [], "incomplete": False})
    missing_permissions(kube, [LIST_PODS])  # type: ignore[arg-type]
    missing_permissions(kube, [LIST_PODS])  # type: ignore[arg-type]
    first, second = kube.listed_for
    assert first.startswith("netconform-rights-") and first != second


def test_an_incomplete_list_asks_about_each_permission_it_leaves_open() -> None:
    kube = FakeKube({"resourceRules": [rule(["list"], [""], ["pods"])], "incomplete": True}, granted={PATCH_INGRESS})
    assert missing_permissions(kube, [LIST_PODS, EXEC, PATCH_INGRESS]) == [EXEC]  # type: ignore[arg-type]
    assert sorted(map(str, kube.reviews)) == sorted(map(str, [EXEC, PATCH_INGRESS]))


def test_an_evaluation_error_counts_as_incomplete() -> None:
    kube = FakeKube({"resourceRules": [], "incomplete": False, "evaluationError": "a role could not be read"})
    assert missing_permissions(kube, [LIST_PODS]) == [LIST_PODS]  # type: ignore[arg-type]
    assert kube.reviews == [LIST_PODS]


def test_a_refused_rules_review_falls_back_to_a_review_per_permission() -> None:
    kube = FakeKube(None, granted={LIST_PODS})
    assert missing_permissions(kube, [LIST_PODS, EXEC]) == [EXEC]  # type: ignore[arg-type]
    assert len(kube.reviews) == 2


def test_a_rules_review_that_fails_otherwise_falls_back_too_but_an_unreachable_server_ends_the_check() -> None:
    def failed(namespace: str) -> dict[str, Any]:
        raise RuntimeError("(500) Internal Server Error")

    kube = FakeKube({}, granted={EXEC})
    kube.rules = failed  # type: ignore[method-assign]
    assert missing_permissions(kube, [LIST_PODS, EXEC]) == [LIST_PODS]  # type: ignore[arg-type]

    def gone(namespace: str) -> dict[str, Any]:
        raise ClusterUnreachable("no cluster answered")

    kube.rules = gone  # type: ignore[method-assign]
    with pytest.raises(ClusterUnreachable):
        missing_permissions(kube, [LIST_PODS])  # type: ignore[arg-type]


def test_the_suites_own_role_as_listed_grants_every_permission_it_needs() -> None:
    """The ClusterRole's rules, listed back by the server as they are written, leave nothing missing."""
    from netconform.rbac import ROLE, roles

    role = next(d for d in roles() if d["metadata"]["name"] == ROLE)
    kube = FakeKube({"resourceRules": role["rules"], "incomplete": False})
    assert missing_permissions(kube, permissions()) == []  # type: ignore[arg-type]
