"""The suite's options, registered by an installed pytest plugin (entry point `pytest11`).

pytest picks its rootdir and ini file before it loads any plugin, so for that one decision `--kube-config PATH`
(with a space) reads as a test path: the run would pick the kubeconfig's folder as rootdir, lose pyproject.toml
(markers, testpaths) and collect whatever test files lie in the current folder, the project's own tests included.
Options are known by the time this plugin's earliest hook runs, before anything is collected or printed: if the
command line used the space form, or came from a folder that is not the suite's, the run starts over once with
`--opt=value` and the suite's own ini file and test folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from . import areas
from .errors import UsageError
from .settings import OPTIONS, Settings, resolve

SETTINGS = pytest.StashKey[Settings]()
ROOT = Path(__file__).resolve().parent.parent
SUITE_INI = ROOT / "pyproject.toml"
SUITE_DIR = ROOT / "conformance"
REEXEC_ENV = "NETCONFORM_REEXEC"
#: pytest-kind (installed for --provider kind, used here as a library) registers options for its own fixture, which
#: this suite does not use. Two of them name what the suite's own options do, and are read as those: before, `pytest
#: --kubeconfig PATH` was accepted and ignored, and the run tested the cluster of $KUBECONFIG, not PATH's.
#: pytest-kind's dest -> (the suite's option, pytest-kind's flag).
KIND_ALIASES = {"kubeconfig": ("kube_config", "--kubeconfig"), "kind_bin": ("kind_bin", "--kind-bin")}
#: The rest would change nothing in this suite's run: refused when given (dest -> flag, the value it has when not).
KIND_UNUSED = {
    "cluster_name": ("--cluster-name", "pytest-kind"),
    "keep_cluster": ("--keep-cluster", False),
    "kind_image": ("--kind-image", None),
    "kind_kubectl_bin": ("--kind-kubectl-bin", None),
}
VALUE_FLAGS = frozenset(opt.flag for opt in OPTIONS) | {flag for _, flag in KIND_ALIASES.values()}


def joined_options(args: Sequence[str], flags: frozenset[str] = VALUE_FLAGS) -> list[str]:
    """`--opt value` -> `--opt=value` for the suite's options (up to a bare `--`)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg in flags and i + 1 < len(args):
            out.append(f"{arg}={args[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def uses_suite_options(args: Sequence[str]) -> bool:
    return any(a.split("=", 1)[0] in VALUE_FLAGS for a in args)


def has_test_paths(args: Sequence[str]) -> bool:
    """Whether the (joined) command line names test paths or node ids of its own."""
    takes_value = {
        "-k",
        "-m",
        "-n",
        "-p",
        "-c",
        "-o",
        "--dist",
        "--rootdir",
        "--junitxml",
        "--html",
        "--maxfail",
        "--timeout",
        "--tx",
        "--basetemp",
        "--confcutdir",
        "--deselect",
        "--ignore",
    }
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in takes_value:
            skip = True
            continue
        if not arg.startswith("-"):
            return True
    return False


def restart_args(args: Sequence[str], inipath: Path | None) -> list[str] | None:
    """The command line to start over with, or None when this one is already read as the suite means it."""
    fixed = joined_options(args)
    foreign = inipath is None or inipath.resolve() != SUITE_INI
    if foreign and (uses_suite_options(fixed) or inipath is None) and SUITE_INI.exists():
        fixed = ["-c", str(SUITE_INI), "--rootdir", str(ROOT), *fixed]
        if not has_test_paths(fixed):
            fixed.append(str(SUITE_DIR))
    return fixed if fixed != list(args) else None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Start over once when pytest chose its rootdir from a misread command line (see the module docstring)."""
    args = list(early_config.invocation_params.args)
    if os.environ.get(REEXEC_ENV) or os.environ.get("PYTEST_XDIST_WORKER") or args != sys.argv[1:]:
        return  # already restarted, an xdist worker, or pytest run in-process by a test
    again = restart_args(args, early_config.inipath)
    if again is None:
        return
    os.environ[REEXEC_ENV] = "1"
    capman = early_config.pluginmanager.getplugin("capturemanager")
    if capman is not None:  # pytest already captures fds 1 and 2 here; the new process must get the real ones
        capman.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *again])


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netconform", "netconform (each also as $NETCONFORM_<NAME> and ini netconform_<name>)")
    for opt in OPTIONS:
        group.addoption(opt.flag, dest=f"nc_{opt.name}", default=None, help=opt.help)
        parser.addini(opt.ini, help=opt.help, default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in areas.marker_lines():
        config.addinivalue_line("markers", line)
    cli = {opt.name: config.getoption(f"nc_{opt.name}") for opt in OPTIONS}
    try:
        cli = with_kind_spellings(cli, lambda dest: config.getoption(dest, default=None))
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None
    ini = {opt.ini: config.getini(opt.ini) for opt in OPTIONS}
    try:
        config.stash[SETTINGS] = resolve(cli, ini=ini)
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None


def with_kind_spellings(cli: dict[str, Any], given: Callable[[str], Any]) -> dict[str, Any]:
    """The suite's command-line options with pytest-kind's spellings of two of them read in (`given(dest)`: that
    option's value, None when pytest-kind is not loaded); UsageError for one of its options this suite would ignore,
    or for two spellings of one option that name different values."""
    out = dict(cli)
    for dest, (flag, unset) in KIND_UNUSED.items():
        if given(dest) not in (None, unset):
            raise UsageError(f"{flag} is pytest-kind's option for its own fixture, which netconform does not use")
    for dest, (name, flag) in KIND_ALIASES.items():
        value = given(dest)
        if value is None:
            continue
        ours = next(opt.flag for opt in OPTIONS if opt.name == name)
        if out[name] not in (None, value):
            raise UsageError(f"{flag} and {ours} name different values ({value}, {out[name]}): give one")
        out[name] = value
    return out


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS]
