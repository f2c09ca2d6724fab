"""A small TCP proxy on a free loopback port, standing between the service and Redis.

The machine's redis-server is shared, so it is never stopped: the processes under
test reach Redis only through this proxy, and the harness makes Redis unreachable for
them alone by cutting the link (every connection reset, new ones refused by an
immediate reset) or stalling it (connections accepted, no byte forwarded: a
partition, which only the clients' socket timeouts can detect).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

OPEN, CUT, STALL = "open", "cut", "stall"


def _reset(sock: socket.socket) -> None:
    """Close with an RST rather than a FIN: what a dead peer or a firewall looks like.

    close() alone does not do it while a pump thread is blocked in recv() on the
    socket: the kernel keeps the connection until that call returns, so the peer
    would see neither a reset nor a reply (a half-open link). shutdown(SHUT_RD) wakes
    the reader first."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.listener = socket.create_server((host, 0), reuse_port=False)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.state = OPEN
        self.flowing = threading.Event()
        self.flowing.set()
        self.lock = threading.Lock()
        self.links: set[tuple[socket.socket, socket.socket]] = set()
        self.connections = 0
        self.closed = False
        self.thread = threading.Thread(target=self._accept, name="proxy", daemon=True)

    @property
    def port(self) -> int:
        return self.address[1]

    def start(self) -> TcpProxy:
        self.thread.start()
        return self

    # Faults

    def cut(self) -> int:
        """Reset every open connection and refuse new ones; returns how many were cut."""
        with self.lock:
            self.state = CUT
            self.flowing.set()
            links, self.links = self.links, set()
        for client, upstream in links:
            _reset(client)
            _reset(upstream)
        return len(links)

    def stall(self) -> None:
        """Keep every connection open but forward nothing, in either direction."""
        with self.lock:
            self.state = STALL
            self.flowing.clear()

    def restore(self) -> None:
        with self.lock:
            self.state = OPEN
            self.flowing.set()

    def close(self) -> None:
        self.closed = True
        self.restore()
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()

    # Plumbing

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.state == CUT:
                _reset(client)
                continue
            threading.Thread(
                target=self._open, args=(client,), name="proxy-link", daemon=True
            ).start()

    def _open(self, client: socket.socket) -> None:
        # A stalled link does not even reach Redis until it is restored.
        self.flowing.wait()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            _reset(client)
            return
        with self.lock:
            if self.state == CUT:
                _reset(client)
                _reset(upstream)
                return
            self.links.add((client, upstream))
            self.connections += 1
        link = (client, upstream)
        threading.Thread(
            target=self._pump, args=(client, upstream, link), daemon=True
        ).start()
        self._pump(upstream, client, link)

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        link: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.links.discard(link)
            for sock in link:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
