"""The NetworkPolicy evaluator against the API reference's rules, one rule per case."""

from __future__ import annotations

from typing import Any

import pytest

from netconform.netpol import ContainerPort, Pod, allowed, policy_types, selects

PORTS = (
    ContainerPort(80, "TCP", "serve-80-tcp"),
    ContainerPort(81, "TCP", "serve-81-tcp"),
    ContainerPort(80, "UDP", "serve-80-udp"),
    ContainerPort(81, "UDP", "serve-81-udp"),
)
NS = {"x": {"ns": "x", "team": "red"}, "y": {"ns": "y", "team": "red"}, "z": {"ns": "z", "team": "blue"}}


def pod(ns: str, name: str, ip: str) -> Pod:
    return Pod(ns, name, {"pod": name}, ip, PORTS)


XA, XB, YA, YB, ZC = (
    pod("x", "a", "10.0.0.1"),
    pod("x", "b", "10.0.0.2"),
    pod("y", "a", "10.0.1.1"),
    pod("y", "b", "10.0.1.2"),
    pod("z", "c", "10.0.2.3"),
)


def policy(ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


def test_no_policy_allows_everything() -> None:
    assert allowed([], NS, XA, ZC, 80)


def test_deny_all_ingress_isolates_only_the_selected_namespace() -> None:
    deny = [policy("x", {"podSelector": {}, "policyTypes": ["Ingress"]})]
    assert not allowed(deny, NS, YA, XA, 80)
    assert not allowed(deny, NS, XB, XA, 80), "pods of the same namespace are denied too"
    assert allowed(deny, NS, XA, YA, 80), "egress from the isolated pod is untouched"


def test_policy_types_default_to_ingress_plus_egress_when_rules_exist() -> None:
    assert policy_types(policy("x", {"podSelector": {}})) == ["Ingress"]
    assert policy_types(policy("x", {"podSelector": {}, "egress": []})) == ["Ingress", "Egress"]


def test_egress_deny_blocks_the_source_not_the_destination() -> None:
    deny = [policy("x", {"podSelector": {}, "policyTypes": ["Egress"]})]
    assert not allowed(deny, NS, XA, YA, 80)
    assert allowed(deny, NS, YA, XA, 80)


def test_pod_selector_peer_is_limited_to_the_policy_namespace() -> None:
    allow_b = [
        policy(
            "x",
            {
                "podSelector": {"matchLabels": {"pod": "a"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
            },
        )
    ]
    assert allowed(allow_b, NS, XB, XA, 80)
    assert not allowed(allow_b, NS, YB, XA, 80), "y/b has the label but lives in another namespace"
    assert allowed(allow_b, NS, YB, XB, 80), "x/b is not selected by the policy"


def test_namespace_selector_and_pod_selector_in_one_peer_is_and_in_two_peers_is_or() -> None:
    one_peer = [
        policy(
            "x",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchLabels": {"ns": "y"}},
                                "podSelector": {"matchLabels": {"pod": "a"}},
                            }
                        ]
                    }
                ],
            },
        )
    ]
    two_peers = [
        policy(
            "x",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                            {"podSelector": {"matchLabels": {"pod": "a"}}},
                        ]
                    }
                ],
            },
        )
    ]
    assert allowed(one_peer, NS, YA, XB, 80)
    assert not allowed(one_peer, NS, YB, XB, 80)
    assert not allowed(one_peer, NS, XA, XB, 80), "x/a matches the pod part only"
    assert allowed(two_peers, NS, YB, XB, 80)
    assert allowed(two_peers, NS, XA, XB, 80)
    assert not allowed(two_peers, NS, ZC, XB, 80)


def test_ports_by_number_range_name_and_protocol() -> None:
    def only(port: dict[str, Any]) -> list[dict[str, Any]]:
        return [policy("x", {"podSelector": {}, "ingress": [{"ports": [port]}]})]

    assert allowed(only({"port": 80}), NS, YA, XA, 80)
    assert not allowed(only({"port": 80}), NS, YA, XA, 81)
    assert not allowed(only({"port": 80}), NS, YA, XA, 80, "UDP"), "protocol defaults to TCP"
    assert allowed(only({"port": 80, "protocol": "UDP"}), NS, YA, XA, 80, "UDP")
    assert allowed(only({"port": 80, "endPort": 81}), NS, YA, XA, 81)
    assert not allowed(only({"port": 79, "endPort": 80}), NS, YA, XA, 81)
    assert allowed(only({"port": "serve-81-tcp"}), NS, YA, XA, 81)
    assert not allowed(only({"port": "serve-81-tcp"}), NS, YA, XA, 80)
    assert not allowed(only({"port": "serve-81-tcp", "protocol": "UDP"}), NS, YA, XA, 81, "UDP")
    assert allowed(only({"protocol": "UDP"}), NS, YA, XA, 81, "UDP"), "a port entry without port: every port"


def test_ip_block_with_except() -> None:
    rule = [
        policy(
            "x",
            {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}}]}],
            },
        )
    ]
    assert allowed(rule, NS, XB, XA, 80)
    assert not allowed(rule, NS, YA, XA, 80)
    assert allowed(rule, NS, ZC, XA, 80)


def test_egress_to_a_cidr_and_ingress_together_must_both_admit() -> None:
    policies = [
        policy(
            "x",
            {
                "podSelector": {"matchLabels": {"pod": "a"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.1.0/24"}}]}],
            },
        ),
        policy(
            "y",
            {
                "podSelector": {"matchLabels": {"pod": "b"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
            },
        ),
    ]
    assert allowed(policies, NS, XA, YA, 80)
    assert not allowed(policies, NS, XA, YB, 80), "egress admits, ingress at y/b does not"
    assert not allowed(policies, NS, XA, ZC, 80), "egress does not admit z"
    assert allowed(policies, NS, ZC, YB, 80)


def test_several_policies_are_a_union() -> None:
    policies = [
        policy("x", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}),
        policy("x", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]}),
    ]
    assert allowed(policies, NS, YA, XA, 80) and allowed(policies, NS, ZC, XA, 80)
    assert not allowed(policies, NS, XB, XA, 80)


@pytest.mark.parametrize(
    ("selector", "labels", "want"),
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
    ],
)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], want: bool) -> None:
    assert selects(selector, labels) is want


def test_the_matrix_leaves_out_a_pod_to_itself_and_draws_it_as_a_dash() -> None:
    from netconform.netpol import Cell, expected_matrix, truth_table

    deny = [policy("x", {"podSelector": {}, "policyTypes": ["Ingress"]})]
    matrix = expected_matrix(deny, NS, [XA, XB, YA])
    assert Cell("x/a", "x/a", 80, "TCP", "pod IP") not in matrix
    assert matrix[Cell("y/a", "x/a", 80, "TCP", "Service")] is False
    assert matrix[Cell("x/a", "y/a", 81, "UDP", "pod IP")] is True
    assert len(matrix) == 3 * 2 * 4 * 2
    assert truth_table(matrix, [XA, XB, YA], 80, "TCP", "pod IP").splitlines()[1:] == [
        "x/a -   X   .  ",
        "x/b X   -   .  ",
        "y/a X   X   -  ",
    ]


def test_report_tables_are_one_row_per_source_for_every_port_and_path() -> None:
    from netconform.netpol import as_tables, expected_matrix

    deny = [policy("x", {"podSelector": {}, "policyTypes": ["Ingress"]})]
    expected = expected_matrix(deny, NS, [XA, XB, YA])
    tables = as_tables(expected, {}, [XA, XB, YA])
    assert len(tables) == 8
    assert tables["81/UDP by Service"] == {"expected": ["-X.", "X-.", "XX-"], "observed": ["-??", "?-?", "??-"]}


class _Lab:
    """What probe_enforcement asks of the lab: pods, Services, one connection, apply and delete."""

    def __init__(self, service_works: bool) -> None:
        from types import SimpleNamespace

        from netconform import netpol

        self.cluster = SimpleNamespace(settings=SimpleNamespace(deadline=lambda s: 0.3))
        self.services = {"z/c": "10.96.0.9"}
        self.service_works = service_works
        pods = (("x", "a", "10.0.0.1"), ("z", "c", "10.0.0.9"))
        self._pods = {f"{ns}/{name}": netpol.Pod(ns, name, {}, ip) for ns, name, ip in pods}
        self.applied: list[str] = []

    def pod(self, key: str):  # noqa: ANN201
        return self._pods[key]

    def connects(self, cell) -> bool:  # noqa: ANN001
        return cell.via == "pod IP" or self.service_works

    def repro(self, src) -> str:  # noqa: ANN001
        return "kubectl exec ..."

    def apply(self, manifest: str) -> list[dict]:
        self.applied.append(manifest)
        return [{"metadata": {"namespace": "z", "name": manifest}}]

    def delete(self, namespace: str, name: str) -> None:
        pass


def test_a_lab_whose_services_do_not_answer_is_broken_before_any_policy():
    """No Service proxy: every table has a Service path, so the checks fail at once with that cause instead of
    each waiting out its deadline (measured in CI: 65 s of the suite's run under a broken proxy)."""
    from fixtures.netpol import probe_enforcement

    lab = _Lab(service_works=False)
    got = probe_enforcement(lab, 0.3)  # type: ignore[arg-type]
    assert got.broken and "not through its Service (10.96.0.9:80)" in got.broken
    assert lab.applied == [], "no policy is applied to a lab that is broken without one"


def _lab_on_two_nodes():  # noqa: ANN202
    """A PolicyLab of four pods, two on each node, with no cluster behind it (only its pure parts are used)."""
    from fixtures.netpol import PolicyLab

    pods = [XA, XB, YA, YB]
    nodes = {XA.key: "n1", XB.key: "n2", YA.key: "n1", YB.key: "n2"}
    services = {p.key: f"10.96.0.{i}" for i, p in enumerate(pods, 1)}
    return PolicyLab(None, {}, pods, services, nodes, {})  # type: ignore[arg-type]


def test_canaries_are_one_connection_to_flip_for_each_pair_of_nodes_that_has_one() -> None:
    """An engine programs each node on its own: a whole round waits until a flipped connection has been seen
    between every pair of nodes the change touches, not only the first."""
    from netconform.netpol import expected_matrix

    lab = _lab_on_two_nodes()
    lab.last = expected_matrix([], NS, lab.pods)  # no policy: everything through
    deny_y = expected_matrix([policy("y", {"podSelector": {}, "policyTypes": ["Ingress"]})], NS, lab.pods)
    canaries = lab.canaries(deny_y)
    pairs = [(lab.nodes[c.src], lab.nodes[c.dst]) for c in canaries]
    assert all(lab.last[c] and not deny_y[c] for c in canaries), "each canary is a connection the change blocks"
    assert sorted(pairs) == [("n1", "n1"), ("n1", "n2"), ("n2", "n1"), ("n2", "n2")], "one per pair of nodes"
    assert lab.canaries(lab.last) == [], "nothing to wait for when nothing changes"
    lab.last = {}
    assert lab.canaries(deny_y) == canaries, "before the first round: against the lab as built, with no policy"


def test_a_canary_still_going_through_is_pending_and_one_blocked_is_done() -> None:
    """Canaries are polled until each node pair's one has flipped; those that have are not asked again."""
    from netconform.netpol import expected_matrix

    lab = _lab_on_two_nodes()
    lab.last = expected_matrix([], NS, lab.pods)
    deny_y = expected_matrix([policy("y", {"podSelector": {}, "policyTypes": ["Ingress"]})], NS, lab.pods)
    canaries = lab.canaries(deny_y)
    still_open = canaries[0]  # the first node pair's rules are not programmed yet

    def answers(src: Pod, targets: list[str]) -> list[str]:
        return [
            f"{t} ok {still_open.dst.split('/')[1]}"
            if (src.key, t) == (still_open.src, lab._target(still_open))
            else f"{t} fail i/o timeout"
            for t in targets
        ]

    lab._answers = answers  # type: ignore[method-assign]
    assert lab.not_yet(canaries, deny_y) == [still_open]


def test_a_connection_wrong_in_one_round_only_does_not_hide_the_broken_node() -> None:
    """Node n1 lets every connection in, and in the last round one allowed connection between two pods of n2 timed
    out as well: the failure is placed by what was wrong in both of the last two rounds, which all go to n1."""
    from conformance.test_networkpolicy import once, where
    from netconform.netpol import differences, expected_matrix

    lab = _lab_on_two_nodes()
    deny_y = expected_matrix([policy("y", {"podSelector": {}, "policyTypes": ["Ingress"]})], NS, lab.pods)
    n1_lets_all_in = {c: want or lab.nodes[c.dst] == "n1" for c, want in deny_y.items()}
    stray = next(c for c, want in deny_y.items() if want and lab.nodes[c.src] == lab.nodes[c.dst] == "n2")
    lab.before_last, lab.last = n1_lets_all_in, {**n1_lets_all_in, stray: False}
    wrong = differences(deny_y, lab.last)

    lasting = lab.lasting(wrong)

    assert stray in wrong and stray not in lasting
    assert lasting == differences(deny_y, n1_lets_all_in) != []
    assert where(lab, lasting) == "every one of them goes to a pod on node n1"
    assert once(len(wrong) - len(lasting)) == " (1 more differed in the last round only, not in the one before)"
    assert where(lab, wrong) == "they involve pods on nodes n1, n2", "the stray alone would have hidden n1"


def test_rounds_that_agree_on_no_wrong_connection_keep_all_of_them() -> None:
    """A matrix that flaps as a whole has no lasting difference: every wrong connection of the last round is shown,
    none is dropped."""
    from netconform.netpol import differences, expected_matrix

    lab = _lab_on_two_nodes()
    deny_y = expected_matrix([policy("y", {"podSelector": {}, "policyTypes": ["Ingress"]})], NS, lab.pods)
    lab.before_last, lab.last = deny_y, {c: True for c in deny_y}
    wrong = differences(deny_y, lab.last)
    assert wrong and lab.lasting(wrong) == wrong
    lab.before_last = {}  # the first round of a convergence: nothing to compare with
    assert lab.lasting(wrong) == wrong


def test_where_names_the_node_every_wrong_connection_leaves_or_touches() -> None:
    """All between two nodes' pods, all from one node's pods, or all with an end on the same node(s): the failure's
    first line says which."""
    from conformance.test_networkpolicy import where
    from netconform.netpol import Cell

    lab = _lab_on_two_nodes()  # x/a and y/a on n1, x/b and y/b on n2
    from_n2 = [Cell(XB.key, XA.key, 80, "TCP", "pod"), Cell(YB.key, XB.key, 80, "TCP", "pod")]
    assert where(lab, from_n2) == "every one of them comes from a pod on node n2"
    assert where(lab, from_n2[:1]) == "every one of them goes from a pod on node n2 to a pod on node n1"
    assert where(lab, from_n2[1:]) == "every one of them is between pods on node n2"
    touching_n2 = [Cell(XB.key, XA.key, 80, "TCP", "pod"), Cell(YA.key, YB.key, 80, "TCP", "pod")]
    assert where(lab, touching_n2) == "every one of them has an end on node n1, n2"
    crossing_and_within = [*touching_n2, Cell(XA.key, YA.key, 80, "TCP", "pod")]
    assert where(lab, crossing_and_within) == "every one of them has an end on node n1"
