"""A loaded machine, made reproducible: Ctrl-C arrives while xdist's controller is still starting its workers, and
gw0, which has collected already, is about to create a module's namespace on a thread that requests work ahead.

Loaded with `-p ctrlcrace`; $NETCONFORM_RACE_DIR is a directory holding a FIFO named `swept`.
- The controller holds off starting every worker but gw0 until Ctrl-C (or a deadline).
- gw0's first namespace creation off its main thread writes its area to the file `held`, then waits until the
  controller has deleted the run's namespaces (the controller writes to the FIFO as its very last step) or the
  deadline passes, and goes on. A controller that deletes before its workers have ended leaves it behind.
"""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path
from typing import Any

import pytest

DEADLINE_S = 60.0
RACE_DIR = "NETCONFORM_RACE_DIR"


def _race_dir() -> Path:
    return Path(os.environ[RACE_DIR])


def pytest_configure_node(node: Any) -> None:
    if node.gateway.id != "gw0":
        threading.Event().wait(DEADLINE_S)  # Ctrl-C interrupts the wait: the controller is "still starting workers"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") != "gw0":
        return
    from fixtures.namespaces import NamespaceFactory

    original = NamespaceFactory.create
    first = threading.Lock()

    def create(self: NamespaceFactory, area: str, *args: Any, **kwargs: Any) -> str:
        if threading.current_thread() is not threading.main_thread() and first.acquire(blocking=False):
            # Read and write ends both ours, so the FIFO never reads as closed: only the controller's byte wakes us.
            fifo = os.open(_race_dir() / "swept", os.O_RDWR | os.O_NONBLOCK)
            try:
                (_race_dir() / "held").write_text(area)
                select.select([fifo], [], [], DEADLINE_S)
            finally:
                os.close(fifo)
        return original(self, area, *args, **kwargs)

    NamespaceFactory.create = create  # type: ignore[method-assign]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    try:
        fifo = os.open(_race_dir() / "swept", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader left: gw0 has ended
    try:
        os.write(fifo, b"x")
    finally:
        os.close(fifo)
