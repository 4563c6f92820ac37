"""The local cluster on a shared host: private files, one command at a time, a preflight that names conflicts, and
folders it may use (no cluster needed; tests/integration proves the rest on a real one)."""

import json
import multiprocessing
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconform.cluster import config, hostsys, lock, paths, preflight
from netconform.cluster.config import DEFAULT_RANGES, Ranges
from netconform.cluster.files import private_dir, write_private
from netconform.cluster.preflight import Address, Route, overlaps


def test_a_private_file_is_0600_from_its_first_byte_and_replaces_atomically(tmp_path):
    folder = private_dir(tmp_path / "pki")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    old = os.umask(0)  # the widest umask: the mode still comes from the creation call, not from it
    try:
        write_private(folder / "a.key", "secret")
        write_private(folder / "a.key", b"newer")
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / "a.key").stat().st_mode) == 0o600
    assert (folder / "a.key").read_bytes() == b"newer" and [p.name for p in folder.iterdir()] == ["a.key"]


def _hold(cache: str, started, release) -> None:  # another process holding the lock
    paths.CACHE = Path(cache)
    with lock.held():
        started.set()
        release.wait(20)


def test_a_second_command_refuses_under_no_wait_and_waits_otherwise(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE", tmp_path)
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), started, release))
    holder.start()
    try:
        assert started.wait(20)
        with pytest.raises(lock.Busy, match=rf"pid {holder.pid}\) is running `up`, `down` or a build"):
            with lock.held(wait=False):
                pass
        said: list[str] = []
        with pytest.raises(lock.Busy, match="for more than"):
            with lock.held(say=said.append, wait_s=0.5):
                pass
        assert said == [f"waiting for another netconform cluster command (pid {holder.pid}) to finish"]
        release.set()
        t0 = time.monotonic()
        with lock.held(wait_s=20), lock.held(wait=False):  # re-entrant within one process (up cleans up via down)
            assert time.monotonic() - t0 < 20
    finally:
        release.set()
        holder.join(20)


def test_routes_and_addresses_inside_the_cluster_ranges_are_named_but_not_ours_or_elsewhere():
    routes = [
        Route("default", "eth0"),
        Route("10.244.3.0/24", "wg0"),  # inside the pod range
        Route("10.0.0.0/8", "vpn0"),  # around both the pod and the Service range
        Route("10.244.1.0/24", "ncbr0"),  # our own bridge's
        Route("192.168.0.0/16", "eth0"),
    ]
    addresses = [Address("172.28.0.7/24", "docker1"), Address("192.168.1.5/24", "eth0")]
    found = overlaps(routes, addresses)
    assert [str(o) for o in found] == [
        "route 10.244.3.0/24 dev wg0 overlaps 10.244.0.0/16 (pod addresses)",
        "route 10.0.0.0/8 dev vpn0 overlaps 10.244.0.0/16 (pod addresses)",
        "route 10.0.0.0/8 dev vpn0 overlaps 10.96.0.0/16 (Service addresses)",
        "address 172.28.0.7/24 on docker1 overlaps 172.28.0.0/24 (the node bridge and LoadBalancer pool)",
    ]
    assert found[0].advice.endswith("remove it, or choose another range with `cluster up --pod-cidr`")
    assert found[3].advice.endswith("`cluster up --node-subnet`")
    # The ranges a user chose instead are what is checked: these three are clear of every route and address above.
    elsewhere = Ranges.parse("172.29.4.0/24", "100.64.0.0/16", "172.30.0.0/16")
    assert overlaps(routes, addresses, elsewhere) == []


def test_ranges_give_each_fixed_address_its_place_and_refuse_what_cannot_work():
    r = Ranges.parse(node_subnet="192.168.50.0/23", pod_cidr="10.100.0.0/22", service_cidr="10.200.0.0/20")
    assert (r.host_ip, r.node_ip(1), r.node_ip(4)) == ("192.168.50.1", "192.168.50.11", "192.168.50.14")
    assert r.lb_pool == "192.168.50.200-192.168.50.239"
    assert (r.api_service_ip, r.dns_service_ip, r.ingress_service_ip) == ("10.200.0.1", "10.200.0.10", "10.200.0.80")
    assert Ranges.from_meta(r.as_meta()) == r
    assert Ranges.from_meta({"nodes": 2}) == DEFAULT_RANGES  # a cluster.json from before the options
    assert Ranges.parse() == DEFAULT_RANGES
    wrong = {
        ("10.0.0.0/25", None, None): "--node-subnet 10.0.0.0/25 is too small",
        (None, "10.244.0.0/23", None): "--pod-cidr 10.244.0.0/23 is too small: each of up to 4 nodes takes a /24",
        (None, None, "10.96.0.0/25"): "--service-cidr 10.96.0.0/25 must be between a /12 and a /24",
        (None, None, "10.0.0.0/8"): "--service-cidr 10.0.0.0/8 must be between a /12 and a /24",
        (None, "10.96.0.0/12", None): "--pod-cidr 10.96.0.0/12 overlaps --service-cidr 10.96.0.0/16",
        ("10.244.7.0/24", None, None): "--node-subnet 10.244.7.0/24 overlaps --pod-cidr 10.244.0.0/16",
        (None, "10.244.0.1/16", None): "--pod-cidr '10.244.0.1/16' is not an IPv4 network in CIDR form",
        (None, None, "fd00::/108"): "--service-cidr 'fd00::/108' is not an IPv4 network",
    }
    for args, message in wrong.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            Ranges.parse(*args)


def test_a_disk_fuller_than_the_eviction_threshold_is_refused(tmp_path):
    assert preflight.disk_problems(tmp_path / "not" / "there", need=0.0) == []
    (problem,) = preflight.disk_problems(tmp_path, need=1.0)
    assert "is free; the nodes' kubelets evict every pod below 100%" in problem


@pytest.mark.parametrize("bad", ["", ".", "state", "/", "/var"])
def test_state_and_cache_folders_must_be_absolute_and_deep(monkeypatch, bad):
    monkeypatch.setattr(paths, "STATE", Path(bad))
    (problem,) = paths.problems()
    assert problem.startswith("NETCONFORM_STATE=") and "absolute path at least two folders deep" in problem


def test_an_empty_state_variable_means_the_default_not_the_current_folder(monkeypatch):
    import importlib

    monkeypatch.setenv("NETCONFORM_STATE", "")
    try:
        assert str(importlib.reload(paths).STATE) == "/var/lib/netconform"
    finally:
        monkeypatch.delenv("NETCONFORM_STATE")
        importlib.reload(paths)


def test_components_and_kubectl_inherit_no_proxy():
    from netconform.cluster.procs import component_env

    caller = {"PATH": "/bin", "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "x", "http_proxy": "http://p", "A": "1"}
    assert component_env({"B": "2"}, base=caller) == {"PATH": "/bin", "A": "1", "B": "2"}


@pytest.mark.parametrize("command", ["up", "preflight"])
def test_a_wrong_range_option_is_one_line_and_exit_2_before_anything_happens(capsys, command):
    from netconform import cli

    assert cli.main(["cluster", command, "--pod-cidr", "10.244.0.0/30"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "netconform: --pod-cidr 10.244.0.0/30 is too small: each of up to 4 nodes takes a /24"
    ]


def _kubelet_folder(tmp_path, monkeypatch) -> Path:
    """The kubelets' fixed device-plugin folder, under tmp_path/var/lib here; state under tmp_path/state."""
    monkeypatch.setattr(paths, "STATE", tmp_path / "state")
    paths.STATE.mkdir(parents=True)
    folder = tmp_path / "var" / "lib" / "kubelet" / "device-plugins"
    monkeypatch.setattr(hostsys, "DEVICE_PLUGINS", folder)
    (tmp_path / "var" / "lib").mkdir(parents=True)
    monkeypatch.setattr(hostsys, "SHIM_SOCKETS", tmp_path / "run" / "containerd" / "s")
    (tmp_path / "run").mkdir()
    monkeypatch.setattr(hostsys, "CNI_RESULTS", tmp_path / "var" / "lib" / "cni" / "results")
    monkeypatch.setattr(hostsys, "CONTAINER_LOG_LINKS", tmp_path / "var" / "log" / "containers")
    (tmp_path / "var" / "log").mkdir()
    return folder


def _kubelets_run(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kubelet.sock").touch()
    (folder / "kubelet_internal_checkpoint").write_text("{}")


def test_down_removes_the_kubelets_folder_only_from_where_the_host_had_none(tmp_path, monkeypatch):
    folder = _kubelet_folder(tmp_path, monkeypatch)
    hostsys.save()  # before the first kubelet: /var/lib exists, /var/lib/kubelet does not
    _kubelets_run(folder)
    assert hostsys._remove_created() == [f"removed {tmp_path / 'var/lib/kubelet'} (made by the nodes' kubelets)"]
    assert (tmp_path / "var" / "lib").is_dir() and not (tmp_path / "var" / "lib" / "kubelet").exists()


def test_down_leaves_a_kubelet_folder_the_host_had_or_that_holds_someone_elses_file(tmp_path, monkeypatch):
    folder = _kubelet_folder(tmp_path, monkeypatch)
    folder.mkdir(parents=True)
    hostsys.save()  # the host had it already (a kubelet of its own, say)
    _kubelets_run(folder)
    assert hostsys._remove_created() == [] and (folder / "kubelet.sock").exists()

    other = _kubelet_folder(tmp_path / "second", monkeypatch)
    hostsys.save()
    _kubelets_run(other)
    (other / "vendor-plugin.sock").touch()
    said = hostsys._remove_created()
    assert len(said) == 1 and said[0].startswith(f"left {tmp_path / 'second/var/lib/kubelet'}: it holds files")
    assert "vendor-plugin.sock" in said[0] and (other / "vendor-plugin.sock").exists()


def test_down_removes_the_shims_socket_folder_it_made_and_keeps_one_with_a_file_left(tmp_path, monkeypatch):
    _kubelet_folder(tmp_path, monkeypatch)
    hostsys.save()  # before the first pod: /run exists, /run/containerd does not
    hostsys.SHIM_SOCKETS.mkdir(parents=True)  # the shims' folder; each removed its socket when it ended
    assert hostsys._remove_created() == [f"removed {tmp_path / 'run/containerd'} (made by the nodes' containerd shims)"]

    _kubelet_folder(tmp_path / "second", monkeypatch)
    hostsys.save()
    hostsys.SHIM_SOCKETS.mkdir(parents=True)
    (hostsys.SHIM_SOCKETS / "0123abcd").touch()  # not known to be ours: a socket of another containerd's shim
    said = hostsys._remove_created()
    assert len(said) == 1 and said[0].startswith(f"left {tmp_path / 'second/run/containerd'}: it holds files")
    assert (hostsys.SHIM_SOCKETS / "0123abcd").exists()


def test_down_removes_the_nodes_cni_results_and_log_links_even_from_folders_the_host_had(tmp_path, monkeypatch):
    """Known for certain by the cluster's own paths in them: a pod network namespace under config.RUN, a link into the
    nodes' state folder. Anyone else's stay, and so do the folders the host had."""
    _kubelet_folder(tmp_path, monkeypatch)
    hostsys.CNI_RESULTS.mkdir(parents=True)
    hostsys.CONTAINER_LOG_LINKS.mkdir(parents=True)
    hostsys.save()  # the host had both
    ours = hostsys.CNI_RESULTS / "netconform-0a1b-eth0"
    ours.write_text(json.dumps({"containerId": "0a1b", "netns": f"{config.RUN}/nc-node-1/containerd/netns/cni-1"}))
    theirs = hostsys.CNI_RESULTS / "podman-9f8e-eth0"
    theirs.write_text(json.dumps({"containerId": "9f8e", "netns": "/run/netns/netns-9f8e"}))
    our_link = hostsys.CONTAINER_LOG_LINKS / "web_nc-ns_web-0a1b.log"
    our_link.symlink_to(f"{paths.STATE}/nodes/nc-node-1/pod-logs/nc-ns_web_1/web/0.log")
    their_link = hostsys.CONTAINER_LOG_LINKS / "app_default_app-9f8e.log"
    their_link.symlink_to("/var/log/pods/default_app_2/app/0.log")
    assert hostsys._remove_created() == [
        f"removed 1 file(s) of the nodes' containerd from {hostsys.CNI_RESULTS}",
        f"removed 1 file(s) of the nodes' kubelets from {hostsys.CONTAINER_LOG_LINKS}",
    ]
    assert not ours.exists() and theirs.exists() and not our_link.is_symlink() and their_link.is_symlink()


def test_down_removes_a_log_link_folder_it_made_once_only_its_links_are_left(tmp_path, monkeypatch):
    _kubelet_folder(tmp_path, monkeypatch)
    hostsys.save()  # /var/log exists, /var/log/containers does not
    hostsys.CONTAINER_LOG_LINKS.mkdir()
    (hostsys.CONTAINER_LOG_LINKS / "web_nc-ns_web-0a1b.log").symlink_to(f"{paths.STATE}/nodes/nc-node-1/x/0.log")
    assert hostsys._remove_created() == [f"removed {hostsys.CONTAINER_LOG_LINKS} (made by the nodes' kubelets)"]


def test_a_record_of_the_kubelets_folder_alone_from_an_earlier_version_is_still_put_back(tmp_path, monkeypatch):
    folder = _kubelet_folder(tmp_path, monkeypatch)
    hostsys.created_path().write_text(json.dumps({"created": str(tmp_path / "var/lib/kubelet")}))
    _kubelets_run(folder)
    assert hostsys._remove_created() == [f"removed {tmp_path / 'var/lib/kubelet'} (made by the nodes' kubelets)"]


@pytest.fixture
def short_folder() -> Iterator[Path]:
    """A folder with a short path: a unix socket's path has at most 107 bytes, which pytest's tmp_path under
    `make test`'s own TMPDIR exceeds."""
    folder = Path(tempfile.mkdtemp(prefix="nc-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_a_device_plugin_folder_someone_serves_in_is_refused_and_a_stale_socket_is_not(short_folder):
    """The kubelets remove every socket in their fixed folder when they start: one that answers belongs to a kubelet
    or device plugin of the host's own, and `up` stops before it; one left by an ended kubelet does not count."""
    folder = short_folder / "device-plugins"
    folder.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(folder / "kubelet.sock"))
    stale.close()  # the file stays, nobody listens
    assert preflight.device_plugin_problems(folder) == []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(folder / "gpu.sock"))
        live.listen(1)
        (said,) = preflight.device_plugin_problems(folder)
    assert f"{folder} has sockets in use (gpu.sock)" in said and "stop them first" in said
    assert preflight.device_plugin_problems(short_folder / "absent") == []
