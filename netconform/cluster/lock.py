"""One lock over `cluster up`, `cluster down` and the build cache: two commands never work on the cluster or the
cache at once. Re-entrant within a process (`up` cleans up through `down`)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import NetconformError
from . import paths

#: How long a command waits for another one to finish (a cold build takes about 15 minutes).
WAIT_S = 1800.0

_held = 0


class Busy(NetconformError):
    """Another netconform cluster command holds the lock."""


def lock_path() -> os.PathLike[str]:
    return paths.CACHE / "cluster.lock"


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 64).decode(errors="replace").strip() or "?"


@contextmanager
def held(wait: bool = True, say: Callable[[str], None] = print, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold the lock for the block: wait for a holder (up to `wait_s`, saying so once), or with `wait=False` refuse
    at once naming it."""
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    paths.CACHE.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        end = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(fd)
                if not wait:
                    raise Busy(
                        f"another netconform cluster command (pid {holder}) is running `up`, `down` or a build; "
                        f"run again without --no-wait to wait for it ({lock_path()})"
                    ) from None
                if time.monotonic() >= end:
                    raise Busy(f"pid {holder} held {lock_path()} for more than {wait_s:.0f}s; is it stuck?") from None
                if not told:
                    say(f"waiting for another netconform cluster command (pid {holder}) to finish")
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        _held = 1
        try:
            yield
        finally:
            _held = 0
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
