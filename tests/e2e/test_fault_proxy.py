"""The fault proxy between TV app and gateway, with real sockets on free ports."""

from __future__ import annotations

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
