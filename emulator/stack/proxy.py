"""A TCP proxy between the TV app and the gateway that can cut or slow the network on demand.

It forwards raw bytes (TLS passes through untouched, so the TV app still verifies the gateway's
certificate). Conditions: ``up``; ``down`` — open connections are reset and new ones are reset at
once, as a box whose uplink died would see; ``slow`` — every chunk waits ``delay_ms`` in each
direction. The upstream address can change while running, so a restarted gateway may come back on
another port without the TV app noticing.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CHUNK = 65536
_CONNECT_TIMEOUT = 5.0


class ProxyError(Exception):
    """The fault proxy was asked for something it cannot do."""


class NetworkMode(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    SLOW = "slow"


@dataclass(frozen=True)
class NetworkCondition:
    mode: NetworkMode = NetworkMode.UP
    delay_ms: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.delay_ms <= 60_000:
            raise ProxyError(f"delay_ms must be between 0 and 60000, not {self.delay_ms}")
        if self.mode is NetworkMode.SLOW and self.delay_ms == 0:
            raise ProxyError("a slow network needs delay_ms above 0")


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0 makes close() send RST: the peer sees "connection reset", not a clean EOF.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Connection:
    """One client connection and its upstream twin, pumped by two threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self._proxy = proxy
        self._client = client
        self._upstream = upstream
        self._closed = threading.Event()

    def start(self) -> None:
        for src, dst, name in (
            (self._client, self._upstream, "up"),
            (self._upstream, self._client, "down"),
        ):
            threading.Thread(
                target=self._pump, args=(src, dst), name=f"proxy-{name}", daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                data = src.recv(_CHUNK)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                delay = self._proxy.condition.delay_ms
                if delay:
                    # Simulated latency, not synchronisation.
                    time.sleep(delay / 1000)
                if self._closed.is_set():
                    return
                dst.sendall(data)
        except OSError:
            self.cut()

    def cut(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        _reset(self._client)
        _reset(self._upstream)
        self._proxy._forget(self)


class FaultProxy:
    """Listens on 127.0.0.1 (a free port unless given) and forwards to ``upstream``."""

    def __init__(
        self, upstream: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._upstream = upstream
        self._condition = NetworkCondition()
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._thread = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)
        self._closing = threading.Event()
        self.accepted = 0
        self.refused = 0

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def upstream(self) -> tuple[str, int]:
        return self._upstream

    @property
    def condition(self) -> NetworkCondition:
        return self._condition

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def set_upstream(self, upstream: tuple[str, int]) -> None:
        with self._lock:
            self._upstream = upstream

    def set_condition(self, condition: NetworkCondition) -> None:
        with self._lock:
            self._condition = condition
            doomed = list(self._connections) if condition.mode is NetworkMode.DOWN else []
        for connection in doomed:
            connection.cut()
        log.info("event=network_condition mode=%s delay_ms=%d", condition.mode, condition.delay_ms)

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                down = self._condition.mode is NetworkMode.DOWN
                upstream = self._upstream
            if down:
                self.refused += 1
                _reset(client)
                continue
            threading.Thread(
                target=self._open, args=(client, upstream), name="proxy-open", daemon=True
            ).start()

    def _open(self, client: socket.socket, upstream_addr: tuple[str, int]) -> None:
        try:
            upstream = socket.create_connection(upstream_addr, timeout=_CONNECT_TIMEOUT)
        except OSError:
            # The gateway is down (e.g. restarting): the client sees a reset, like the real thing.
            self.refused += 1
            _reset(client)
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self, client, upstream)
        with self._lock:
            if self._condition.mode is NetworkMode.DOWN or self._closing.is_set():
                cut_now = True
            else:
                cut_now = False
                self._connections.add(connection)
                self.accepted += 1
        if cut_now:
            connection.cut()
            return
        connection.start()

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        if self._thread.is_alive():
            self._thread.join(2.0)
        with self._lock:
            doomed = list(self._connections)
        for connection in doomed:
            connection.cut()
