"""A TCP relay to the API server that can be switched to drop everything: connections stay open, nothing passes
either way, nothing is refused (what a black-holed server looks like to a client, without touching the cluster)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class BlackholeRelay:
    upstream: tuple[str, int]
    dropping: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None

    def start(self) -> int:
        """Listen on 127.0.0.1 (a port the kernel picks) and return that port."""
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return int(self._sock.getsockname()[1])

    def stop(self) -> None:
        if self._sock:
            self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.dropping.is_set():
            self._swallow(client)
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
        self._pump(client, server)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.dropping.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        if not self.dropping.is_set():  # a black hole never closes anything
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _swallow(self, client: socket.socket) -> None:
        try:
            while client.recv(65536):
                pass
        except OSError:
            pass
