"""The benchmark scripts (benchmarks/, not a package) imported for unit tests of their pure logic."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@contextmanager
def benchmark(monkeypatch: pytest.MonkeyPatch, name: str) -> Iterator[ModuleType]:
    """benchmarks/<name>.py as a module (its folder first on the import path, as when run), forgotten after."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
