"""The fault proxy between TV app and gateway, with real sockets on free ports."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from emulator.stack.proxy import FaultProxy, NetworkCondition, NetworkMode, ProxyError


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo_server: tuple[str, int]) -> Iterator[FaultProxy]:
    proxy = FaultProxy(echo_server).start()
    yield proxy
    proxy.close()


def _round_trip(address: tuple[str, int], payload: bytes = b"ping") -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(65536)


def test_bytes_pass_through_unchanged(proxy: FaultProxy) -> None:
    assert _round_trip(proxy.address, b"\x00TLS-ish\xff" * 100) == b"\x00TLS-ish\xff" * 100


def test_down_resets_an_open_connection(proxy: FaultProxy) -> None:
    with socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"a")
        assert sock.recv(10) == b"a"
        proxy.set_condition(NetworkCondition(NetworkMode.DOWN))
        with pytest.raises(ConnectionError):
            sock.sendall(b"b")
            if not sock.recv(10):
                raise ConnectionResetError("closed")


def test_down_refuses_new_connections_until_up(proxy: FaultProxy) -> None:
    proxy.set_condition(NetworkCondition(NetworkMode.DOWN))
    with pytest.raises(ConnectionError):
        data = _round_trip(proxy.address)
        if not data:
            raise ConnectionResetError("closed")
    proxy.set_condition(NetworkCondition(NetworkMode.UP))
    assert _round_trip(proxy.address) == b"ping"


def test_slow_adds_the_delay_each_way(proxy: FaultProxy) -> None:
    proxy.set_condition(NetworkCondition(NetworkMode.SLOW, delay_ms=150))
    started = time.monotonic()
    assert _round_trip(proxy.address) == b"ping"
    assert time.monotonic() - started >= 0.3


def test_upstream_can_move(echo_server: tuple[str, int]) -> None:
    dead = socket.create_server(("127.0.0.1", 0))
    dead_address = dead.getsockname()[:2]
    dead.close()
    proxy = FaultProxy(dead_address).start()
    try:
        with pytest.raises(ConnectionError):
            if not _round_trip(proxy.address):
                raise ConnectionResetError("closed")
        proxy.set_upstream(echo_server)
        assert _round_trip(proxy.address) == b"ping"
    finally:
        proxy.close()


def test_slow_without_delay_is_refused() -> None:
    with pytest.raises(ProxyError, match="delay_ms"):
        NetworkCondition(NetworkMode.SLOW, delay_ms=0)


class _HoldingEcho(socketserver.BaseRequestHandler):
    """Echoes, but answers b"hold" only once the server's ``release`` event is set."""

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                if data == b"hold":
                    self.server.release.wait(30)  # type: ignore[attr-defined]
                self.request.sendall(data)


@pytest.fixture
def holding_server() -> Iterator[tuple[tuple[str, int], threading.Event]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _HoldingEcho)
    server.daemon_threads = True
    server.release = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[:2], server.release  # type: ignore[attr-defined]
    server.release.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the proxy closes ``sock`` (EOF or reset) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(16) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def holding_proxy(
    holding_server: tuple[tuple[str, int], threading.Event],
) -> Iterator[tuple[FaultProxy, socket.socket]]:
    """A proxy in front of the holding server, and a client connection through it."""
    proxy = FaultProxy(holding_server[0]).start()
    try:
        with socket.create_connection(proxy.address, timeout=5) as sock:
            yield proxy, sock
    finally:
        proxy.close()


def test_draining_closes_an_idle_connection_at_once(
    holding_proxy: tuple[FaultProxy, socket.socket],
) -> None:
    proxy, sock = holding_proxy
    sock.sendall(b"a")
    assert sock.recv(16) == b"a"  # answered: the connection is idle
    started = time.monotonic()
    with proxy.draining(proxy.upstream, grace=30):
        assert _closed_within(sock, 5)
    assert time.monotonic() - started < 5


def test_draining_lets_an_unanswered_request_get_its_answer(
    holding_server: tuple[tuple[str, int], threading.Event],
    holding_proxy: tuple[FaultProxy, socket.socket],
) -> None:
    proxy, sock = holding_proxy
    sock.sendall(b"hold")
    with proxy.draining(proxy.upstream, grace=30):
        assert not _closed_within(sock, 0.5)  # still waiting for its answer
        holding_server[1].set()
        sock.settimeout(5)
        assert sock.recv(16) == b"hold"
        assert _closed_within(sock, 5)  # answered, then closed


def test_draining_closes_every_connection_after_the_grace(
    holding_proxy: tuple[FaultProxy, socket.socket],
) -> None:
    proxy, sock = holding_proxy
    sock.sendall(b"hold")
    with proxy.draining(proxy.upstream, grace=0.2):
        assert _closed_within(sock, 5)
