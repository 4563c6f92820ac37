"""The suite's options, registered by an installed pytest plugin (entry point `pytest11`).

Options must be known before pytest parses the command line: an option added only by a conftest plugin is
unknown while pytest picks its rootdir, so `--kube-config PATH` (with a space) would be taken for a test path.
"""

from __future__ import annotations

import pytest

from .errors import UsageError
from .settings import OPTIONS, Settings, resolve

SETTINGS = pytest.StashKey[Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netconform", "netconform (each also as $NETCONFORM_<NAME> and ini netconform_<name>)")
    for opt in OPTIONS:
        group.addoption(opt.flag, dest=f"nc_{opt.name}", default=None, help=opt.help)
        parser.addini(opt.ini, help=opt.help, default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    cli = {opt.name: config.getoption(f"nc_{opt.name}") for opt in OPTIONS}
    ini = {opt.ini: config.getini(opt.ini) for opt in OPTIONS}
    try:
        config.stash[SETTINGS] = resolve(cli, ini=ini)
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[SETTINGS]
