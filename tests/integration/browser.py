"""Headless Chromium (Debian's package) drawing a report with networking off: what it drew, measured in the page."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
#: As the machine's notes say: no background connections, no first-run work, a fresh profile each time.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: What the report must draw: name -> CSS selector.
SELECTORS = {
    "diagnosis": "#diagnosis",
    "area_rows": "#areas tr",
    "grids": "svg.grid",
    "cells": "rect.cell",
    "failed_cells": "rect.cell.failed",
    "bars": "rect.bar",
    "floors": "line.floor",
    "certificate_rows": "#certificates tr",
    "failures": "details.result.failed",
}

#: Counts each selector's elements and those with a non-zero drawn size, into an attribute --dump-dom shows.
MEASURE = """<script>
const out = {};
for (const [name, sel] of Object.entries(%s)) {
  const els = [...document.querySelectorAll(sel)];
  out[name] = {count: els.length, drawn: els.filter(e => {
    const r = e.getBoundingClientRect();  // a vertical line is drawn with no width
    return r.height > 0 && (r.width > 0 || e.tagName === "line"); }).length};
}
document.body.setAttribute("data-measured", JSON.stringify(out));
</script>"""


def available() -> bool:
    return Path(CHROMIUM).exists() and shutil.which("unshare") is not None


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Chromium in a network namespace of its own (only a down loopback): the report must need no network. Its home
    is in the profile's folder too: outside --user-data-dir it still writes ~/.config/chromium/Crash Reports and
    ~/.cache/dconf, which the project's tests left in root's home (seen 2026-12-05)."""
    cmd = ["unshare", "--net", CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    home = profile.with_name(f"{profile.name}-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def measure(report: Path, work: Path) -> dict[str, dict[str, int]]:
    """Open a copy of the report with the measuring script added; each selector's element count and drawn count."""
    page = work / "measured.html"
    page.write_text(report.read_text().replace("</body>", MEASURE % json.dumps(SELECTORS) + "</body>"))
    proc = chromium(["--dump-dom", "--virtual-time-budget=3000", page.as_uri()], work / "profile-measure")
    found = re.search(r'data-measured="([^"]*)"', proc.stdout)
    assert found, f"Chromium drew nothing measurable (rc {proc.returncode}): {proc.stderr[-1500:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(report: Path, out: Path, work: Path, size: str = "1300,1500") -> None:
    proc = chromium([f"--screenshot={out}", f"--window-size={size}", report.as_uri()], work / "profile-shot")
    assert out.exists() and out.stat().st_size > 10_000, f"no screenshot (rc {proc.returncode}): {proc.stderr[-800:]}"
