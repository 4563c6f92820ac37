"""The running local cluster is safe on a shared host: its keys and kubeconfigs are private, etcd answers only the
API server, one cluster command runs at a time, and `up` of another shape refuses instead of tearing it down."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import time

import pytest

from netconform.cluster import config, lifecycle, lock, paths


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_and_kubeconfigs_are_private_in_private_folders(kubeconfig):
    assert mode(paths.STATE) == 0o700 and mode(paths.STATE / "pki") == 0o700 and mode(config.RUN) == 0o700
    secrets = [*(paths.STATE / "pki").glob("*.key"), *paths.STATE.glob("*.kubeconfig")]
    assert len(secrets) >= 10
    assert {p.name: oct(mode(p)) for p in secrets if mode(p) != 0o600} == {}


def test_a_run_leaves_no_copy_of_the_kubeconfigs_keys_behind(run_suite, tmp_path):
    """The admin kubeconfig embeds its CA, certificate and key; the Kubernetes client writes them to temporary files
    in every process that loads it. A run with workers (which end by os._exit, past any exit handler) removes every
    copy: before this, each worker of each run left three files in /tmp, a private key among them. The client's API
    discovery cache goes with them (it was left in /tmp for every API server address)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = run_suite("-k", "dns_service_name_resolves", workers=2, env={"TMPDIR": str(scratch)})
    assert run.rc == 0 and run.ids("passed"), run.output
    pem = [p for p in scratch.rglob("*") if p.is_file() and b"-----BEGIN" in p.read_bytes()]
    left = [p for p in scratch.iterdir() if not p.name.startswith("pytest-of-")]  # pytest keeps its own 3 last
    assert (pem, left) == ([], []), f"left in the run's TMPDIR: {sorted(set(pem + left))}"


def etcd_handshake(cert: tuple[str, str] | None) -> str:
    """What a TLS client gets from etcd: "answered" after a request, or the error."""
    ctx = ssl.create_default_context(cafile=str(paths.STATE / "pki" / "etcd-ca.crt"))
    if cert:
        ctx.load_cert_chain(*cert)
    host, port = config.ETCD_CLIENT.removeprefix("https://").split(":")
    try:
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return "answered " + tls.recv(200).decode(errors="replace").splitlines()[0]
    except (ssl.SSLError, OSError) as e:
        return f"refused: {e}"


def test_etcd_refuses_a_client_without_a_certificate_of_its_own_ca(kubeconfig):
    pki = paths.STATE / "pki"
    assert etcd_handshake(None).startswith("refused"), "etcd answered a client without a certificate"
    admin = (str(pki / "admin.crt"), str(pki / "admin.key"))  # cluster-admin of the API, but not etcd's
    assert etcd_handshake(admin).startswith("refused")
    apiserver = (str(pki / "apiserver-etcd-client.crt"), str(pki / "apiserver-etcd-client.key"))
    assert etcd_handshake(apiserver).startswith("answered HTTP/1.1 200"), etcd_handshake(apiserver)


def cluster_cmd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["netconform", "cluster", *args], capture_output=True, text=True, timeout=timeout)


def test_a_second_up_refuses_under_no_wait_and_otherwise_waits_for_the_first(kubeconfig):
    nodes = str((lifecycle.read_meta() or {})["nodes"])
    with lock.held():  # this test stands in for a first `up` still at work
        refused = cluster_cmd("up", "--nodes", nodes, "--no-wait")
        assert refused.returncode == 2, refused.stderr
        assert "another netconform cluster command" in refused.stderr and "Traceback" not in refused.stderr
        waiting = subprocess.Popen(
            ["netconform", "cluster", "up", "--nodes", nodes], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(2)  # it must still be waiting: nothing else to poll for while the lock is held
        assert waiting.poll() is None, waiting.communicate()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and "waiting for another netconform cluster command" in err, err
    assert "cluster already running" in err, err


def test_up_of_another_shape_refuses_and_leaves_the_running_cluster_alone(kubeconfig):
    meta = lifecycle.read_meta() or {}
    other = "1" if meta["nodes"] != 1 else "2"
    before = dict(sorted((k, v) for k, v in meta.items() if k != "nodes_detail"))
    refused = cluster_cmd("up", "--nodes", other)
    assert refused.returncode == 2, refused.stderr
    assert "a local cluster is running with" in refused.stderr and "--recreate" in refused.stderr, refused.stderr
    assert lifecycle.healthy() and {k: v for k, v in (lifecycle.read_meta() or {}).items() if k in before} == before


@pytest.mark.parametrize("value", ["relative/state", "/", "/var"])
def test_a_bad_state_folder_is_refused_before_anything_happens(value):
    """(An empty NETCONFORM_STATE is the default folder: tests/unit proves it without taking this cluster down.)"""
    env = {**os.environ, "NETCONFORM_STATE": value}
    got = subprocess.run(["netconform", "cluster", "down"], capture_output=True, text=True, timeout=60, env=env)
    assert got.returncode == 2 and "must be an absolute path" in got.stderr, got.stderr
    assert lifecycle.healthy()
