"""A TCP proxy between the TV app and the gateway that can cut or slow the network on demand.

It forwards raw bytes (TLS passes through untouched, so the TV app still verifies the gateway's
certificate). Conditions: ``up``; ``down`` — open connections are reset and new ones are reset at
once, as a box whose uplink died would see; ``slow`` — every chunk waits ``delay_ms`` in each
direction. The upstream address can change while running, so a restarted gateway may come back on
another port without the TV app noticing.

Restarting the gateway goes through ``draining``: a TLS server that shuts down closes its idle
keep-alive connections with a close_notify and then waits for the peer's, which a client's idle
pooled socket never sends, so the old gateway would wait until it is killed. While draining, the
proxy closes each connection to the old gateway as soon as it carries no request (its last
request has been answered and nothing moved for a moment); after a grace period it closes the
rest, whose requests then fail as on a real restart (the TV app's journal resubmits them).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CHUNK = 65536
_CONNECT_TIMEOUT = 5.0
_DRAIN_QUIET = 0.05  # a connection this long without traffic, its request answered, is idle
_DRAIN_POLL = 0.02


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
    # A pump thread may be blocked in recv() on this socket, and Linux defers a close() until
    # that returns; shutting the reading side down first wakes it (and sends nothing).
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    sock.close()


class _Connection:
    """One client connection and its upstream twin, pumped by two threads."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: socket.socket,
        upstream: socket.socket,
        upstream_addr: tuple[str, int],
    ) -> None:
        self._proxy = proxy
        self._client = client
        self._upstream = upstream
        self.upstream_addr = upstream_addr
        self._closed = threading.Event()
        # Plain attributes written by the pumps and read by a drain: the GIL keeps each whole.
        self._awaiting_reply = False  # the client sent bytes the gateway has not answered yet
        self._carrying = {"up": False, "down": False}  # a chunk received, not yet forwarded
        self._last_traffic = time.monotonic()

    def idle(self, quiet: float) -> bool:
        """No request outstanding, nothing in transit and no traffic for ``quiet`` seconds."""
        return (
            not self._awaiting_reply
            and not any(self._carrying.values())
            and time.monotonic() - self._last_traffic >= quiet
        )

    def start(self) -> None:
        for src, dst, name in (
            (self._client, self._upstream, "up"),
            (self._upstream, self._client, "down"),
        ):
            threading.Thread(
                target=self._pump, args=(src, dst), name=f"proxy-{name}", daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        towards_gateway = src is self._client
        direction = "up" if towards_gateway else "down"
        try:
            while not self._closed.is_set():
                data = src.recv(_CHUNK)
                if self._closed.is_set():
                    return
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                self._carrying[direction] = True
                self._last_traffic = time.monotonic()
                if towards_gateway:
                    self._awaiting_reply = True
                delay = self._proxy.condition.delay_ms
                if delay:
                    # Simulated latency, not synchronisation.
                    time.sleep(delay / 1000)
                if self._closed.is_set():
                    return
                dst.sendall(data)
                if not towards_gateway:
                    self._awaiting_reply = False
                self._last_traffic = time.monotonic()
                self._carrying[direction] = False
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

    @contextlib.contextmanager
    def draining(self, upstream: tuple[str, int], grace: float) -> Iterator[None]:
        """While the body stops the gateway at ``upstream``, close its connections (see the
        module docstring): idle ones at once, all of them after ``grace`` seconds."""
        done = threading.Event()
        thread = threading.Thread(
            target=self._drain, args=(upstream, grace, done), name="proxy-drain", daemon=True
        )
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _drain(self, upstream: tuple[str, int], grace: float, done: threading.Event) -> None:
        deadline = time.monotonic() + grace
        closed = 0
        while True:
            late = time.monotonic() >= deadline
            with self._lock:
                doomed = [
                    c
                    for c in self._connections
                    if c.upstream_addr == upstream and (late or c.idle(_DRAIN_QUIET))
                ]
            for connection in doomed:
                connection.cut()
            closed += len(doomed)
            if late or done.wait(_DRAIN_POLL):
                break
        log.info("event=drained upstream=%s:%d connections=%d", *upstream, closed)

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
        connection = _Connection(self, client, upstream, upstream_addr)
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
