"""Private files of the local cluster: keys and kubeconfigs are born 0600 (never written, then chmod'ed) in folders
only root can enter."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path` (and missing parents) as a folder only its owner can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # mkdir's mode passes through the umask, and the folder may be older
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """Write `path` with mode 0600 from its first byte: a new file created 0600 beside it, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
