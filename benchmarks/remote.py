"""The suite as it runs against a cluster whose API server is far away: a command run with its kubeconfig pointed at a
relay on loopback that passes every byte to the local cluster's API server and back, each direction held for half
of the round trip given. An admin's laptop reaches a cloud cluster's API in tens of milliseconds, the local cluster
in a fraction of one; the pods' own traffic stays in the cluster either way, so only the API requests and exec
streams of the suite (and of kubectl, when the command runs it) are delayed, as from afar. What it shows: the
requests a run makes one after another, each waiting out a round trip (this machine's speed does not move it).

The relay passes TLS through untouched (it reads no byte of it), listens on 127.0.0.1 only and ends with this script.
The kubeconfig copy names https://127.0.0.1:<port>: the API server's certificate must name 127.0.0.1 (the local
cluster's does), and credential files it names by relative paths are not found from the copy's folder. In the
command, `{kubeconfig}` is replaced by the copy's path; KUBECONFIG names it too.

Usage (on the running local cluster):
    python3 benchmarks/remote.py --rtt-ms 40 -- pytest -q -p no:randomly --kube-config={kubeconfig} -n 4 --dist loadfile
Prints the command's wall time, and the connections and bytes the relay passed."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from cpu_by_process import exit_with, run_to_the_end  # this script's folder is first on the import path

from netconform.cluster.paths import KUBECONFIG as LOCAL_CLUSTER_KUBECONFIG

CHUNK = 64 * 1024


@dataclass
class Counts:
    connections: int = 0
    up: int = 0  # bytes to the API server
    down: int = 0  # bytes back


async def pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float, counts: Counts, up: bool
) -> None:
    """Everything `reader` gives, to `writer`, each chunk `delay_s` after it arrived (in order; a slow chunk does not
    hold the ones behind it longer than their own delay)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.ensure_future(send())
    try:
        while data := await reader.read(CHUNK):
            if up:
                counts.up += len(data)
            else:
                counts.down += len(data)
            queue.put_nowait((time.monotonic() + delay_s, data))
    except ConnectionError:
        pass
    finally:
        queue.put_nowait((time.monotonic() + delay_s, b""))
        try:
            await sender
        except ConnectionError:
            pass


class Relay:
    """A relay on 127.0.0.1 to host:port, holding each direction's bytes `delay_s` (half the round trip), run by an
    event loop on a thread of its own while in its `with` block; `port` is where it listens."""

    def __init__(self, host: str, port: int, delay_s: float) -> None:
        self.target, self.delay_s, self.counts = (host, port), delay_s, Counts()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.counts.connections += 1
        self._handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        self._open.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._open.add(server_w)
        await asyncio.gather(
            pump(client_r, server_w, self.delay_s, self.counts, up=True),
            pump(server_r, client_w, self.delay_s, self.counts, up=False),
            return_exceptions=True,
        )
        for w in (client_w, server_w):
            w.close()
            self._open.discard(w)

    def __enter__(self) -> Relay:
        self._thread.start()
        listening = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._connection, "127.0.0.1", 0), self._loop)
        self._server = listening.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        async def stop() -> None:
            self._server.close()
            # Connections the command left open (a client gone, its server still holding on) end here.
            for writer in list(self._open):
                writer.close()
            await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True), 5)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def api_server(kubeconfig: dict) -> dict:
    """The current context's cluster entry of a kubeconfig."""
    context = next(c for c in kubeconfig["contexts"] if c["name"] == kubeconfig["current-context"])["context"]
    return next(c for c in kubeconfig["clusters"] if c["name"] == context["cluster"])["cluster"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, required=True, help="round trip added to every API exchange")
    parser.add_argument("--kubeconfig", default=str(LOCAL_CLUSTER_KUBECONFIG), help="the local cluster's by default")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    kubeconfig = yaml.safe_load(Path(args.kubeconfig).read_text())
    cluster = api_server(kubeconfig)
    target = urlsplit(cluster["server"])
    if target.scheme != "https" or not target.hostname:
        parser.error(f"the kubeconfig's server {cluster['server']} is not https://HOST[:PORT]")
    with Relay(target.hostname, target.port or 443, args.rtt_ms / 2000) as relay:
        cluster["server"] = f"https://127.0.0.1:{relay.port}"
        with tempfile.TemporaryDirectory(prefix="netconform-remote-") as tmp:
            copy = Path(tmp) / "kubeconfig"
            copy.touch(mode=0o600)
            copy.write_text(yaml.safe_dump(kubeconfig))
            command = [a.replace("{kubeconfig}", str(copy)) for a in command]
            started = time.monotonic()
            rc, interrupted = run_to_the_end(command, env={**os.environ, "KUBECONFIG": str(copy)})
            wall = time.monotonic() - started
        if interrupted:
            raise KeyboardInterrupt
        counts = relay.counts
    print(
        f"wall {wall:.1f} s at {args.rtt_ms:g} ms round trip to the API server, exit {rc}; the relay passed "
        f"{counts.connections} connections, {counts.up / 1e6:.1f} MB up, {counts.down / 1e6:.1f} MB down",
        file=sys.stderr,
    )
    return rc


if __name__ == "__main__":
    exit_with(main, "remote.py")
