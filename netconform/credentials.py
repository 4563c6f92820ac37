"""Where the Kubernetes client may write a kubeconfig's embedded credentials, and their removal.

The client writes a kubeconfig's `certificate-authority-data`, `client-certificate-data` and `client-key-data` to files
(Python's TLS loads certificates and keys only from files) and removes them in an exit handler, which xdist's workers
and `os._exit` never run: every worker of every run left its CA, certificate and private key in /tmp (12,467 files found
and removed on this machine on 2026-12-03), and its API discovery cache stayed there for every API server address
(netconform.kube now keeps that cache in memory). Here each process gets a folder of its own, named by its pid,
removed when the process ends its work (`forget`, called by the last pytest hook and at exit); a process killed before
that leaves its folder, which the next process that needs one removes once that pid has ended.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

PREFIX = "netconform-credentials-"

_folder: Path | None = None
_lock = threading.Lock()


def folder() -> str:
    """This process's folder for credential files (made on first use, private to its owner)."""
    global _folder
    with _lock:  # threads that connect at once share one folder
        if _folder is None or not _folder.is_dir():
            sweep(Path(tempfile.gettempdir()))
            _folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))  # mode 0700
        return str(_folder)


def forget() -> None:
    """Remove this process's credential files: only once it will open no new connection (the client reads them for
    every new TLS connection). Nothing to do when there is none."""
    global _folder
    with _lock:
        if _folder is None:
            return
        # Renamed first: a thread of this process still writing there then fails instead of filling the folder while
        # it is removed (one run in five left it so when the discovery cache was written there, measured).
        gone = _folder.with_name(f"{_folder.name}-gone")
        try:
            _folder.rename(gone)
        except OSError:
            gone = _folder
        shutil.rmtree(gone, ignore_errors=True)
        # The client remembers the files it wrote by their content: forget those, or a later connection of this
        # process would be handed a removed file.
        from kubernetes.config import kube_config

        written = getattr(kube_config, "_temp_files", {})
        for key in [k for k, name in written.items() if str(name).startswith(f"{_folder}{os.sep}")]:
            del written[key]
        _folder = None


atexit.register(forget)  # a process that ends normally; xdist workers call forget() before their os._exit


def sweep(parent: Path) -> list[Path]:
    """Remove the credential folders in `parent` of processes that have ended (killed before they could); those of
    live processes stay. The folders removed."""
    removed = []
    for path in parent.glob(f"{PREFIX}*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            if path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue  # gone meanwhile: another process swept it
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
