"""reports/report.html: one self-contained file (inline CSS and SVG, no script, font or link to fetch), so it opens
on an air-gapped machine. A pure function of the run (`render`)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from html import escape

from netconform.report.diagnosis import Finding
from netconform.report.model import (
    FAILED,
    LAYERS,
    NOT_APPLICABLE,
    PASSED,
    SKIPPED,
    UNSUPPORTED,
    Cell,
    Certificate,
    CheckResult,
    Run,
    Spread,
)

OUTCOMES = (PASSED, FAILED, UNSUPPORTED, NOT_APPLICABLE, SKIPPED)
COLOURS = {PASSED: "#2e7d32", FAILED: "#c62828", UNSUPPORTED: "#9e9e9e", NOT_APPLICABLE: "#bdbdbd", SKIPPED: "#f9a825"}
#: A failure's text and each attached log are cut to this many characters (a full run stays well under 2 MB).
MAX_TEXT = 6000

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#212121}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
.num{text-align:right}.diag{border-left:6px solid #c62828;background:#fff3f3;padding:.6em 1em}
.ok{border-left-color:#2e7d32;background:#f1f8f1}.panels{display:flex;flex-wrap:wrap;gap:1.5em}
.panel{border:1px solid #ddd;padding:.5em}.panel h3{font-size:.95em;margin:.2em 0}
pre{white-space:pre-wrap;background:#fafafa;padding:.5em;border:1px solid #eee;max-height:40em;overflow:auto}
.outcome{font-weight:600}summary{cursor:pointer}.muted{color:#757575}
#certificates td{max-width:22em;overflow-wrap:anywhere;vertical-align:top}
"""


def render(run: Run, finding: Finding | None) -> str:
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>netconform run {escape(run.run_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>netconform run {escape(run.run_id)}</h1>",
        "".join(f"<div class=muted>{escape(line)}</div>" for line in run.header),
        diagnosis_box(run, finding),
        areas_table(run.results),
        grid_section(run),
        spreads_section(run.observations.spreads),
        certificates_section(run.observations.certificates),
        checks_section(run.results),
        "</body></html>",
    ]
    return "\n".join(parts)


def counts(results: list[CheckResult]) -> dict[str, int]:
    out = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        out[r.outcome] = out.get(r.outcome, 0) + 1
    return out


def diagnosis_box(run: Run, finding: Finding | None) -> str:
    c = counts(run.results)
    tally = ", ".join(f"{n} {k}" for k, n in c.items() if n or k in (PASSED, FAILED))
    wall = f" in {run.wall_s:.1f} s" if run.wall_s else ""
    if finding is None:
        return f"<p class='diag ok' id=diagnosis><b>No check failed</b>: {tally}{wall}.</p>"
    items = "".join(f"<li>{escape(e)}</li>" for e in finding.evidence)
    also = f"<li>also failing (may follow from it): {escape(', '.join(finding.also))}</li>" if finding.also else ""
    return (
        f"<div class=diag id=diagnosis><b>Most likely broken: {escape(finding.layer)}"
        f"{' (' + escape(finding.where) + ')' if finding.where else ''}</b>: {escape(finding.summary)}"
        f"<ul>{items}{also}</ul>{tally}{wall}.</div>"
    )


def by_area(results: list[CheckResult]) -> list[tuple[str, list[CheckResult]]]:
    """The results grouped by area, areas in name order."""
    groups: dict[str, list[CheckResult]] = defaultdict(list)
    for r in results:
        groups[r.area].append(r)
    return sorted(groups.items())


def areas_table(results: list[CheckResult]) -> str:
    head = "".join(f"<th class=num>{k}</th>" for k in OUTCOMES)
    rows = []
    for area, rs in by_area(results):
        c = counts(rs)
        cells = "".join(f"<td class=num style='color:{COLOURS[k] if c[k] else '#bbb'}'>{c[k]}</td>" for k in OUTCOMES)
        seconds = sum(r.seconds for r in rs)
        rows.append(
            f"<tr><td><a href='#area-{escape(area)}'>{escape(area)}</a></td>{cells}"
            f"<td class=num>{seconds:.1f} s</td></tr>"
        )
    return (
        "<h2>Areas</h2><table id=areas><tr><th>area</th>"
        + head
        + "<th class=num>check time</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def cell_colour(cells: list[Cell]) -> str:
    if not cells:
        return "#eeeeee"
    if all(c.ok for c in cells):
        return COLOURS[PASSED]
    return COLOURS[FAILED] if not any(c.ok for c in cells) else "#ef6c00"


def cell_title(src: str, dst: str, cells: list[Cell]) -> str:
    if not cells:
        return f"{src} -> {dst}: not probed"
    lines = [f"{src} -> {dst}"]
    for c in cells:
        lines.append(
            f"{'ok' if c.ok else 'FAILED'}{' ' + c.target if c.target else ''}: {c.answer or '(no answer)'}"
            f"\n  probe: {c.probe}\n  check: {c.test}"
        )
    return "\n".join(lines)


def grid_svg(layer: str, nodes: list[str], grid: dict[tuple[str, str], list[Cell]]) -> str:
    """One layer's node x node panel: rows are sources, columns destinations; hover a cell for probe and answer."""
    size, label = 34, max(len(n) for n in nodes) * 7 + 10
    width = label + size * len(nodes) + 4
    height = label + size * len(nodes) + 4
    out = [
        f"<svg class=grid data-layer='{escape(layer)}' width={width} height={height} "
        f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg' font-size=11>"
    ]
    for i, n in enumerate(nodes):
        y = label + i * size + size / 2 + 4
        out.append(f"<text x={label - 6} y={y:.0f} text-anchor=end>{escape(n)}</text>")
        x = label + i * size + size / 2 + 4
        out.append(f"<text x={x:.0f} y={label - 6} transform='rotate(-90 {x:.0f} {label - 6})'>{escape(n)}</text>")
    for i, src in enumerate(nodes):
        for j, dst in enumerate(nodes):
            cells = grid.get((src, dst), [])
            state = "none" if not cells else ("ok" if all(c.ok for c in cells) else "failed")
            out.append(
                f"<rect class='cell {state}' x={label + j * size} y={label + i * size} width={size - 3} "
                f"height={size - 3} rx=3 fill='{cell_colour(cells)}'><title>{escape(cell_title(src, dst, cells))}"
                "</title></rect>"
            )
    out.append("</svg>")
    return "".join(out)


def grid_section(run: Run) -> str:
    obs = run.observations
    nodes = sorted(set(run.nodes) | {c.src for c in obs.cells} | {c.dst for c in obs.cells}) or ["(no node)"]
    panels = []
    for layer, title in LAYERS.items():
        grid = obs.grid(layer)
        if not grid:
            continue
        panels.append(f"<div class=panel><h3>{escape(title)}</h3>{grid_svg(layer, nodes, grid)}</div>")
    if not panels:
        return "<h2>Node pairs</h2><p class=muted>No node-pair check ran.</p>"
    return (
        "<h2>Node pairs</h2><p class=muted>Rows: the client's node; columns: the server's. Green passed, red failed, "
        "orange mixed, grey not probed; hover a cell for the probe and its answer.</p>"
        f"<div class=panels id=grid>{''.join(panels)}</div>"
    )


def spread_svg(s: Spread) -> str:
    """Requests per replica as bars, with the least share a fair spread gives each drawn as a dashed line."""
    rows = list(s.counts.items())
    label, bar_w, row_h = max([len(k) for k, _ in rows] + [8]) * 7 + 10, 300, 20
    top = max([v for _, v in rows] + [s.floor, 1])
    width, height = label + bar_w + 60, row_h * len(rows) + 26
    out = [
        f"<svg class=spread width={width} height={height} viewBox='0 0 {width} {height}' "
        "xmlns='http://www.w3.org/2000/svg' font-size=11>"
    ]
    for i, (name, n) in enumerate(rows):
        y = i * row_h + 4
        w = bar_w * n / top
        colour = COLOURS[PASSED] if n >= s.floor else COLOURS[FAILED]
        out.append(f"<text x={label - 6} y={y + 13} text-anchor=end>{escape(name)}</text>")
        out.append(
            f"<rect class=bar x={label} y={y} width={max(w, 1):.1f} height={row_h - 5} fill='{colour}'>"
            f"<title>{escape(name)}: {n} of {s.total}</title></rect>"
        )
        out.append(f"<text x={label + max(w, 1) + 4:.1f} y={y + 13}>{n}</text>")
    fx = label + bar_w * s.floor / top
    out.append(
        f"<line class=floor x1={fx:.1f} x2={fx:.1f} y1=0 y2={height - 18} stroke='#000' stroke-dasharray='4 3'/>"
    )
    out.append(f"<text x={fx:.1f} y={height - 4} text-anchor=middle>floor {s.floor:.1f}</text></svg>")
    return "".join(out)


def spreads_section(spreads: list[Spread]) -> str:
    if not spreads:
        return ""
    items = "".join(
        f"<div class=panel><h3>{escape(s.title)}</h3><div class=muted>{escape(s.test)}: {s.total} requests</div>"
        f"{spread_svg(s)}</div>"
        for s in spreads
    )
    return (
        "<h2>Requests per replica</h2><p class=muted>Each bar counts the answers from one replica; the dashed line is "
        "the least a fair spread gives each (a third of the fair share; below it the check fails).</p>"
        f"<div class=panels id=spreads>{items}</div>"
    )


def certificates_section(certificates: list[Certificate]) -> str:
    if not certificates:
        return ""
    now = dt.datetime.now(dt.UTC)
    rows = "".join(
        f"<tr><td>{escape(c.host)}</td><td>{escape(c.subject)}</td><td>{escape(', '.join(c.sans) or '(none)')}</td>"
        f"<td>{escape(' <- '.join(c.chain))}</td><td class=num>{c.days_left(now):.1f} d</td>"
        f"<td>{escape(c.verdict)}</td><td class=muted>{escape(c.test)}</td></tr>"
        for c in certificates
    )
    return (
        "<h2>Certificates served</h2><table id=certificates><tr><th>host</th><th>subject</th><th>SANs</th>"
        "<th>issuers (leaf first)</th><th>validity left</th><th>verdict</th><th>check</th></tr>" + rows + "</table>"
    )


def cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"\n... ({len(text) - MAX_TEXT} more characters)"


def check_row(r: CheckResult) -> str:
    head = (
        f"<span class=outcome style='color:{COLOURS.get(r.outcome, '#000')}'>{escape(r.outcome)}</span> "
        f"{escape(r.test)} <span class=muted>{r.seconds:.1f} s</span>"
    )
    if r.outcome == PASSED or not (r.message or r.sections):
        return f"<li>{head}</li>"
    body = f"<pre>{escape(cut(r.message))}</pre>" + "".join(
        f"<details><summary>{escape(title)}</summary><pre>{escape(cut(text))}</pre></details>"
        for title, text in r.sections
    )
    return f"<li><details class='result {escape(r.outcome)}'><summary>{head}</summary>{body}</details></li>"


def checks_section(results: list[CheckResult]) -> str:
    rank = {k: i for i, k in enumerate((FAILED, UNSUPPORTED, SKIPPED, NOT_APPLICABLE, PASSED))}
    out = ["<h2>Checks</h2>"]
    for area, rs in by_area(results):
        rs = sorted(rs, key=lambda r: (rank.get(r.outcome, 9), r.test))
        out.append(f"<h3 id='area-{escape(area)}'>{escape(area)}</h3><ul>{''.join(check_row(r) for r in rs)}</ul>")
    return "".join(out)
