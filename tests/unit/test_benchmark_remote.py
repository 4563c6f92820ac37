"""benchmarks/remote.py: the relay passes every byte both ways, in order, each way held for half the round trip."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.unit.benchmarks import benchmark


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    with benchmark(monkeypatch, "remote") as module:
        yield module


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on loopback, standing in for the API server."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while data := s.recv(65536):
            got += data
        return got


def test_every_byte_comes_back_in_order(remote: ModuleType, echo_port: int) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: many chunks each way
    with remote.Relay("127.0.0.1", echo_port, 0.005) as relay:
        assert exchange(relay.port, payload) == payload
        assert (relay.counts.connections, relay.counts.up, relay.counts.down) == (1, len(payload), len(payload))


def test_a_round_trip_takes_at_least_the_delay_both_ways(remote: ModuleType, echo_port: int) -> None:
    with remote.Relay("127.0.0.1", echo_port, 0.1) as relay:
        started = time.monotonic()
        assert exchange(relay.port, b"ping") == b"ping"
        assert time.monotonic() - started >= 0.2  # 0.1 s to the server and 0.1 s back, never less


def test_the_current_contexts_cluster_is_the_one_relayed(remote: ModuleType) -> None:
    kubeconfig = {
        "current-context": "b",
        "contexts": [{"name": "a", "context": {"cluster": "one"}}, {"name": "b", "context": {"cluster": "two"}}],
        "clusters": [
            {"name": "one", "cluster": {"server": "https://10.0.0.1:6443"}},
            {"name": "two", "cluster": {"server": "https://10.0.0.2:6443"}},
        ],
    }
    assert remote.api_server(kubeconfig)["server"] == "https://10.0.0.2:6443"


def test_a_connection_left_open_ends_with_the_relay(remote: ModuleType, echo_port: int) -> None:
    relay = remote.Relay("127.0.0.1", echo_port, 0.005).__enter__()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as s:
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        relay.__exit__(None, None, None)
        assert s.recv(1) == b""  # the relay closed its end: the client reads the end of the stream
