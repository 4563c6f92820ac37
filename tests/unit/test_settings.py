"""Option precedence: command line over environment over ini over default, and bad values as one line."""

import pytest

from netconform.areas import NAMES as AREA_NAMES
from netconform.errors import UsageError
from netconform.settings import resolve


def test_default_when_nothing_is_given():
    s = resolve({}, env={}, ini={})
    assert s.provider == "kubeconfig" and s.timeout_scale == 1.0 and s.require == frozenset()
    assert s.sources["provider"] == "default"


def test_command_line_beats_environment_beats_ini():
    ini = {"netconform_provider": "kind", "netconform_timeout_scale": "3"}
    env = {"NETCONFORM_PROVIDER": "local", "NETCONFORM_TIMEOUT_SCALE": "2"}
    s = resolve({"timeout_scale": "1.5"}, env=env, ini=ini)
    assert s.timeout_scale == 1.5 and s.sources["timeout_scale"] == "cli"
    assert s.provider == "local" and s.sources["provider"] == "env"
    assert resolve({}, env={}, ini=ini).provider == "kind"


def test_require_all_expands_to_every_capability():
    assert resolve({"require": "all"}, env={}).require == frozenset(AREA_NAMES)
    assert resolve({"require": "ingress, dns"}, env={}).require == {"ingress", "dns"}


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"provider": "docker"}, "--provider: must be one of kubeconfig, kind, local (given: 'docker')"),
        ({"timeout_scale": "0"}, "--timeout-scale: must be a number above 0 (given: '0')"),
        ({"require": "ingress,teleport"}, "--require: unknown area teleport"),
        ({"local_nodes": "9"}, "--local-nodes: must be between 1 and 4 (given: '9')"),
    ],
)
def test_bad_values_name_the_option_and_the_value(cli, message):
    with pytest.raises(UsageError) as e:
        resolve(cli, env={})
    assert message in str(e.value)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(UsageError, match=r"\$NETCONFORM_TIMEOUT_SCALE"):
        resolve({}, env={"NETCONFORM_TIMEOUT_SCALE": "fast"})


def test_deadlines_scale():
    assert resolve({"timeout_scale": "2.5"}, env={}).deadline(10) == 25
