"""The README's generated tables (options and areas), from the settings and the capability registry.

`python -m netconform.docs` rewrites them in README.md; a unit test fails when the README and the code differ.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from . import areas
from .settings import OPTIONS

README = Path(__file__).resolve().parent.parent / "README.md"


def _default(value: object) -> str:
    if value is None or value == frozenset():
        return "none"
    return f"`{value}`"


def options_table() -> str:
    rows = ["| option | env | default | meaning |", "|---|---|---|---|"]
    for o in OPTIONS:
        rows.append(f"| `{o.flag}` | `{o.env}` | {_default(o.default)} | {o.help} |")
    return "\n".join(rows)


TABLES = {"options": options_table, "areas": areas.markdown_table}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {name} -->\n)(.*?)(<!-- end: {name} -->)", re.S)


def generated(text: str, name: str) -> str | None:
    """The table currently in `text` under the marker `name`."""
    m = _block(name).search(text)
    return m.group(2).rstrip("\n") if m else None


def render(text: str) -> str:
    for name, table in TABLES.items():
        text = _block(name).sub(lambda m, t=table: m.group(1) + t() + "\n" + m.group(3), text)  # type: ignore[misc]
    return text


def main() -> int:
    README.write_text(render(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
