"""The kind provider's command line, against a stand-in `kind` executable (kind cannot run on our machines)."""

import stat
from pathlib import Path

import pytest

from netconform import providers
from netconform.errors import UsageError
from netconform.settings import resolve

STAND_IN = """#!/bin/sh
echo "$@" >> "{log}"
case "$1 $2" in
  "get clusters") [ -f "{state}" ] && echo netconform ;;
  "create cluster") touch "{state}"; for a in "$@"; do case "$a" in --kubeconfig=*) printf '%s\n' "{kubeconfig}" > "${{a#--kubeconfig=}}";; esac; done ;;
esac
exit 0
"""
KUBECONFIG = (
    "apiVersion: v1\nkind: Config\ncurrent-context: kind\nclusters: [{name: kind, cluster: {server: "
    "'https://127.0.0.1:1'}}]\nusers: [{name: kind, user: {token: t}}]\ncontexts: [{name: kind, context: "
    "{cluster: kind, user: kind}}]"
)


@pytest.fixture
def fake_kind(tmp_path, monkeypatch):
    log, state = tmp_path / "kind.log", tmp_path / "exists"
    exe = tmp_path / "kind"
    exe.write_text(STAND_IN.format(log=log, state=state, kubeconfig=KUBECONFIG))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.chdir(tmp_path)
    return exe, log


def test_kind_cluster_is_created_with_the_suites_config(fake_kind):
    exe, log = fake_kind
    kubeconfig = providers.kind_create(resolve({"provider": "kind", "kind_bin": str(exe)}, env={}))
    calls = log.read_text().splitlines()
    assert calls[0] == "get clusters"
    create = calls[1].split()
    assert create[:2] == ["create", "cluster"] and "--name=netconform" in create
    assert create[create.index("--config") + 1] == str(providers.KIND_CONFIG)
    assert f"--kubeconfig={kubeconfig}" in create and Path(kubeconfig).exists()


def test_an_existing_kind_cluster_is_reused(fake_kind):
    exe, log = fake_kind
    s = resolve({"provider": "kind", "kind_bin": str(exe)}, env={})
    providers.kind_create(s)
    providers.kind_create(s)
    assert [c.split()[:2] for c in log.read_text().splitlines()].count(["create", "cluster"]) == 1


def test_kind_config_disables_nothing_by_default_and_maps_nodeports():
    text = providers.KIND_CONFIG.read_text()
    assert "disableDefaultCNI: false" in text and "hostPort: 30080" in text and text.count("role: worker") == 2


def test_missing_kind_is_a_usage_error_not_a_download(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UsageError, match="needs the `kind` executable"):
        providers.kind_binary(resolve({"provider": "kind"}, env={}))
