"""netconform.credentials: a process's copies of a kubeconfig's embedded keys live in a folder of its own, removed when
it ends its work, and the folders of killed processes are removed by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.config import kube_config

from netconform import credentials


@pytest.fixture
def tmpdir_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(credentials, "_folder", None)
    yield tmp_path
    credentials.forget()


def ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_process_gets_a_private_folder_named_by_its_pid(tmpdir_is: Path) -> None:
    folder = Path(credentials.folder())
    assert folder.parent == tmpdir_is
    assert folder.name.startswith(f"{credentials.PREFIX}{os.getpid()}-")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert credentials.folder() == str(folder), "one folder per process"


def test_forget_removes_the_files_and_the_clients_memory_of_them(tmpdir_is: Path) -> None:
    folder = Path(credentials.folder())
    key = folder / "tmpkey"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    kube_config._temp_files["key content"] = str(key)
    kube_config._temp_files["elsewhere"] = "/somewhere/else"
    try:
        credentials.forget()
        assert not folder.exists()
        assert "key content" not in kube_config._temp_files, "a later connection would get a removed file"
        assert kube_config._temp_files["elsewhere"] == "/somewhere/else", "files not ours are not ours to forget"
    finally:
        kube_config._temp_files.pop("elsewhere", None)
    assert Path(credentials.folder()) != folder, "a later connection gets a new folder"


def test_the_folders_of_ended_processes_are_swept_those_of_live_ones_stay(tmpdir_is: Path) -> None:
    dead = tmpdir_is / f"{credentials.PREFIX}{ended_pid()}-abc"
    live = tmpdir_is / f"{credentials.PREFIX}{os.getppid()}-def"
    other = tmpdir_is / "netconform-credentials-notapid"
    unrelated = tmpdir_is / "tmp12345"
    for d in (dead, live, other, unrelated):
        d.mkdir()
    (dead / "tmpkey").write_text("key")
    assert credentials.sweep(tmpdir_is) == [dead]
    assert not dead.exists() and live.exists() and other.exists() and unrelated.exists()


def test_a_new_folder_sweeps_first(tmpdir_is: Path) -> None:
    dead = tmpdir_is / f"{credentials.PREFIX}{ended_pid()}-abc"
    dead.mkdir()
    credentials.folder()
    assert not dead.exists()
