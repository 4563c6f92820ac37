"""Which iptables the local cluster's nodes get: legacy only where the kernel has every table built in."""

import gzip

from netconform.cluster import xtables

ALL_BUILT_IN = "\n".join(f"{option}=y" for option in xtables.BUILT_IN) + "\n"


def test_a_kernel_with_every_table_built_in_misses_nothing():
    assert xtables.missing_built_ins("# comment\nCONFIG_NF_TABLES=y\n" + ALL_BUILT_IN) == []


def test_a_table_built_as_a_module_or_absent_is_named():
    config = ALL_BUILT_IN.replace("CONFIG_IP_NF_NAT=y", "CONFIG_IP_NF_NAT=m").replace("CONFIG_IP6_NF_RAW=y\n", "")
    assert xtables.missing_built_ins(config) == ["CONFIG_IP_NF_NAT", "CONFIG_IP6_NF_RAW"]
    assert "CONFIG_IP_NF_NAT" in xtables.missing_built_ins("# CONFIG_IP_NF_NAT is not set\n")


def _point_at(monkeypatch, tmp_path, kernel_config: str | None, legacy: bool = True):
    multi = tmp_path / "xtables-legacy-multi"
    if legacy:
        multi.write_text("")
    config = tmp_path / "config.gz"
    if kernel_config is not None:
        config.write_bytes(gzip.compress(kernel_config.encode()))
    monkeypatch.setattr(xtables, "LEGACY_MULTI", multi)
    monkeypatch.setattr(xtables, "KERNEL_CONFIG", config)
    monkeypatch.setattr(xtables, "TOOLS", tmp_path / "node-tools")
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin")
    return multi


def test_nodes_get_legacy_links_first_on_their_path(monkeypatch, tmp_path):
    multi = _point_at(monkeypatch, tmp_path, ALL_BUILT_IN)
    assert xtables.prepare() == "legacy (built into the kernel)"
    for name in xtables.NAMES:
        assert (xtables.TOOLS / name).resolve() == multi.resolve()
    assert xtables.node_env() == {"PATH": f"{xtables.TOOLS}:/usr/sbin:/usr/bin"}


def test_nodes_keep_the_hosts_iptables_when_a_table_would_be_loaded_as_a_module(monkeypatch, tmp_path):
    _point_at(monkeypatch, tmp_path, ALL_BUILT_IN.replace("CONFIG_IP_NF_MANGLE=y", "CONFIG_IP_NF_MANGLE=m"))
    assert xtables.prepare() == "the host's (legacy tables not built into the kernel: CONFIG_IP_NF_MANGLE)"
    assert not xtables.TOOLS.exists() and xtables.node_env() == {}


def test_nodes_keep_the_hosts_iptables_without_a_kernel_configuration_or_the_legacy_tools(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _point_at(monkeypatch, tmp_path / "a", None)
    assert xtables.prepare().startswith("the host's (no kernel configuration")
    _point_at(monkeypatch, tmp_path / "b", ALL_BUILT_IN, legacy=False)
    assert xtables.prepare() == f"the host's (no {tmp_path / 'b' / 'xtables-legacy-multi'})"
    assert xtables.node_env() == {}
