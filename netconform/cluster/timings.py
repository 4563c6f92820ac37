"""How long each build and each stage of `cluster up` took last time, so progress lines can say what to expect."""

from __future__ import annotations

import json
import os
import re

from . import paths


def load() -> dict[str, float]:
    try:
        data = json.loads((paths.CACHE / "timings.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def save(update: dict[str, float]) -> None:
    """Merge `update` into the record (written whole, then renamed: a reader never sees half a file)."""
    merged = {**load(), **{k: round(v, 1) for k, v in update.items()}}
    path = paths.CACHE / "timings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".timings.{os.getpid()}.json")
    tmp.write_text(json.dumps(merged, indent=1, sort_keys=True))
    os.replace(tmp, path)


def stage_key(message: str) -> str:
    """A stage's name without what varies between runs (counts, addresses, paths)."""
    return re.split(r"[:;(]", message, maxsplit=1)[0].strip()
