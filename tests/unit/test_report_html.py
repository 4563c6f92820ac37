"""report.html: self-contained, with the area summary, one grid panel per layer, spreads with their bound, served
certificates and each failure folded open with its sections. (Chromium draws it in tests/integration.)"""

import re
from html.parser import HTMLParser

from netconform.report.diagnosis import diagnose
from netconform.report.html import MAX_TEXT, render
from netconform.report.model import (
    FAILED,
    PASSED,
    UNSUPPORTED,
    Cell,
    Certificate,
    CheckResult,
    Observations,
    Run,
    Spread,
)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parsed(page: str) -> list[tuple[str, dict[str, str]]]:
    p = Tags()
    p.feed(page)
    return p.tags


def sample(nodes=("n1", "n2"), failure="expected: x\nobserved: y") -> Run:
    cells = [Cell("tcp", a, b, (a, b) != ("n1", "n2"), "t", "nc-echo probe", "ok web") for a in nodes for b in nodes]
    return Run(
        "r42",
        ["netconform: provider local"],
        list(nodes),
        [
            CheckResult(
                "conformance/test_crossnode.py::test_crossnode_pod_to_pod[n1-to-n2-tcp]",
                "crossnode",
                FAILED,
                2.0,
                failure,
                (("logs of pod ns/p", "log <line>"), ("events in namespace ns", "event")),
            ),
            CheckResult("conformance/test_clusterip.py::test_clusterip_spreads", "clusterip", PASSED, 3.0),
            CheckResult("conformance/test_loadbalancer.py::test_lb", "loadbalancer", UNSUPPORTED, 0.1, "no LB"),
        ],
        Observations(
            cells,
            [Spread("t", "ClusterIP ns/web, TCP", {"web-a": 40, "web-b": 2, "web-c": 48}, 90, 10.0)],
            [
                Certificate(
                    "t", "a.example", "CN=a.example", ("a.example",), ("CN=ca",), "2030-01-01T00:00:00+00:00", "ok"
                )
            ],
        ),
        12.5,
    )


def test_the_page_fetches_nothing():
    page = render(sample(), None)
    tags = parsed(page)
    assert not [t for t, a in tags if t in ("script", "link", "img", "iframe")]
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_areas_are_summarised_with_their_outcomes_and_time():
    page = render(sample(), None)
    row = re.search(r"<tr><td><a href='#area-crossnode'>crossnode</a></td>(.*?)</tr>", page).group(1)
    assert re.findall(r">(\d+)<", row) == ["0", "1", "0", "0", "0"] and "2.0 s" in row


def test_one_grid_panel_per_layer_probed_with_a_cell_per_ordered_pair_and_hover_text():
    tags = parsed(render(sample(), None))
    grids = [a for t, a in tags if t == "svg" and a.get("class") == "grid"]
    assert [g["data-layer"] for g in grids] == ["tcp"]
    cells = [a for t, a in tags if t == "rect" and a.get("class", "").startswith("cell")]
    assert len(cells) == 4 and sum("failed" in c["class"] for c in cells) == 1
    assert "n1 -&gt; n2\nFAILED: ok web\n  probe: nc-echo probe" in render(sample(), None)


def test_a_one_node_cluster_gets_a_one_by_one_grid():
    tags = parsed(render(sample(nodes=("n1",)), None))
    assert len([a for t, a in tags if t == "rect" and a.get("class", "").startswith("cell")]) == 1


def test_a_spread_is_drawn_with_one_bar_per_replica_and_its_floor():
    page = render(sample(), None)
    tags = parsed(page)
    bars = [a for t, a in tags if t == "rect" and a.get("class") == "bar"]
    assert len(bars) == 3 and bars[1]["fill"] == "#c62828"  # web-b, 2 answers, under the floor of 10
    assert [a for t, a in tags if t == "line" and a.get("class") == "floor"]
    assert "floor 10.0" in page


def test_certificates_and_folded_failures_with_their_sections_are_shown_escaped():
    page = render(sample(), diagnose(sample()))
    assert "CN=a.example" in page and "a.example" in page
    assert "<details class='result failed'>" in page and "log &lt;line&gt;" in page
    assert "Most likely broken: pod network" in page


def test_a_huge_failure_text_is_cut():
    page = render(sample(failure="x" * (MAX_TEXT * 3)), None)
    assert "more characters" in page and len(page) < MAX_TEXT * 3
