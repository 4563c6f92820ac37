"""The run's diagnosis names the lowest broken layer, and the node or server when one alone explains the failures."""

from collections import Counter

from netconform.report.diagnosis import diagnose, layer_of, lines, localize
from netconform.report.model import FAILED, PASSED, Cell, CheckResult, Observations, Run

NODES = ["n1", "n2", "n3"]


def check(test: str, area: str, outcome: str = PASSED, message: str = "") -> CheckResult:
    return CheckResult(f"conformance/test_{area}.py::{test}", area, outcome, 1.0, message)


def run(results: list[CheckResult], cells: list[Cell] = ()) -> Run:
    return Run("r1", [], NODES, results, Observations(cells=list(cells)))


def pairs(layer: str, failing: set[tuple[str, str]], nodes: list[str] = NODES, target: str = "") -> list[Cell]:
    return [Cell(layer, a, b, (a, b) not in failing, "t", target=target) for a in nodes for b in nodes]


def test_a_healthy_run_has_no_diagnosis():
    assert diagnose(run([check("test_dns_x", "dns"), check("test_clusterip_y", "clusterip")])) is None
    assert lines(None) == []


def test_dns_down_while_pods_talk_by_ip_names_cluster_dns_and_quotes_the_shared_cause():
    cause = "the cluster DNS does not answer: its Service kube-system/kube-dns has 0 ready endpoints"
    finding = diagnose(
        run(
            [
                check("test_crossnode_pod_to_pod_keeps_the_client_ip[n1-to-n2-tcp]", "crossnode"),
                check("test_clusterip_spreads", "clusterip"),
                check("test_dns_service_name[short]", "dns", FAILED, cause),
                check("test_dns_srv_records", "dns", FAILED, cause),
                check("test_headless_name_resolves", "headless", FAILED, cause),
            ]
        )
    )
    assert finding is not None
    assert finding.layer == "cluster DNS"
    assert finding.summary.startswith("3 of 3 checks failed, while pod network, service proxy passed")
    assert f"3 checks say: {cause}" in finding.evidence
    assert lines(finding)[0].startswith("netconform: most likely broken: cluster DNS: ")


def test_the_lowest_failing_layer_is_named_and_the_others_listed_as_following():
    finding = diagnose(
        run(
            [
                check("test_crossnode_pod_to_pod_x", "crossnode"),
                check("test_clusterip_spreads", "clusterip", FAILED, "ClusterIP"),
                check("test_nodeport_answers", "nodeport", FAILED, "NodePort"),
                check("test_dns_service_name", "dns", FAILED, "DNS"),
            ]
        )
    )
    assert finding is not None
    assert (finding.layer, finding.also) == ("service proxy", ("NodePort", "cluster DNS"))


def test_a_failed_bulk_transfer_alone_in_its_area_points_at_full_size_packets():
    alone = [
        check("test_clusterip_spreads", "clusterip"),
        check("test_clusterip_carries_1_mib_each_way", "clusterip", FAILED),
    ]
    assert diagnose(run(alone)).layer == "path MTU"
    with_others = [
        check("test_clusterip_spreads", "clusterip", FAILED),
        check("test_clusterip_carries_1_mib_each_way", "clusterip", FAILED),
    ]
    assert diagnose(run(with_others)).layer == "service proxy"
    assert layer_of(check("test_crossnode_path_mtu[n1-to-n2]", "crossnode"), Counter()) == ("path MTU")


def test_one_node_whose_pairs_all_fail_is_named():
    cells = pairs("tcp", {("n1", "n3"), ("n2", "n3"), ("n3", "n1"), ("n3", "n2")})
    finding = diagnose(
        run([check("test_crossnode_pod_to_pod_keeps_the_client_ip[n1-to-n3-tcp]", "crossnode", FAILED)], cells)
    )
    assert (finding.layer, finding.where) == ("pod network", "n3")


def test_a_node_that_fails_only_as_destination_is_named_with_the_direction():
    where, how = localize(pairs("networkpolicy", {("n1", "n2"), ("n2", "n2"), ("n3", "n2")}))
    assert where == "n2" and how.startswith("every failed probe went to n2")
    where, how = localize(pairs("hostport", {("n2", "n2")}, nodes=["n1", "n2"]))  # the client sits on the broken node
    assert where == "n2"


def test_a_node_whose_engine_is_down_both_ways_is_named_though_some_of_its_probes_pass():
    # Policies that isolate pods on n1 only still pass through n2; those that isolate n2's pods fail both ways.
    cells = pairs("networkpolicy", set()) + pairs("networkpolicy", {("n1", "n2"), ("n2", "n1"), ("n2", "n2")})
    assert localize(cells)[0] == "n2"


def test_a_node_is_still_named_when_a_stray_failure_elsewhere_lost_a_race():
    # Seen in CI: policy rules flushed on n2; 23 of 24 wrong cells touch n2, one n1 -> n1 cell lost a race.
    cells = (
        pairs("networkpolicy", set(), nodes=["n1", "n2"])
        + [Cell("networkpolicy", a, b, False, "t") for a, b in [("n1", "n1")] + [("n1", "n2")] * 10 + [("n2", "n1")]]
        + [Cell("networkpolicy", "n2", "n2", False, "t")] * 12
    )
    where, how = localize(cells)
    assert where == "n2" and how.startswith("23 of 24 failed probes have an end on n2")
    # Half and half is no one's: nothing is named.
    assert localize(pairs("tcp", {("n1", "n1"), ("n2", "n2")}, nodes=["n1", "n2"])) == ("", "")


def test_two_nodes_that_cannot_reach_each_other_are_named_as_the_path_between():
    where, how = localize(pairs("tcp", {("n1", "n2"), ("n2", "n1")}, nodes=["n1", "n2"]))
    assert where == "between n1 and n2" and "within a node passed" in how


def test_one_silent_server_among_several_on_a_node_is_named():
    cells = [
        Cell("dns", src, "n1", target != "coredns-b", "t", target=target)
        for src in ("n1", "n2")
        for target in ("coredns-a", "coredns-b")
    ]
    assert localize(cells)[0] == "coredns-b on n1"


def test_nothing_is_singled_out_when_everything_fails_or_the_failures_are_scattered():
    assert localize(pairs("tcp", {(a, b) for a in NODES for b in NODES})) == ("", "")
    assert localize(pairs("tcp", {("n1", "n2"), ("n3", "n3")})) == ("", "")


def test_the_worker_banner_of_xdist_is_not_taken_for_the_cause():
    message = "[gw3] linux -- Python 3.11.7 /x/python\nthe ingress does not serve the issued certificate"
    finding = diagnose(run([check("test_certmanager_acme", "certmanager", FAILED, message)]))
    assert finding.evidence == ("test_certmanager_acme: the ingress does not serve the issued certificate",)


def test_an_exception_is_quoted_by_its_error_line_not_by_the_code_around_it():
    message = (
        "ingress_reach = <Precondition object>\n\n    def test_x():\n>       load(secret)\n"
        "E       ValueError: Unable to load PEM file\n\nconformance/test_tls.py:134: ValueError"
    )
    finding = diagnose(run([check("test_tls_own_certificate", "tls", FAILED, message)]))
    assert finding.evidence == ("test_tls_own_certificate: ValueError: Unable to load PEM file",)


def test_a_failures_message_names_each_object_once():
    """A probe's own pod is also often among the objects its check names (the member pod of dnsPolicy None)."""
    from netconform.diagnose import Diagnosis

    message = Diagnosis("w", "e", "o", ("pod ns/a", "service ns/s", "pod ns/a")).message()
    assert "  objects:  pod ns/a; service ns/s" in message.splitlines()
