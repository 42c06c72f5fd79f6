"""Malformed and oversized messages on the daemon's socket: an error answer, the connection
closed, every other client unaffected."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest

from dongle.client import DaemonClient
from dongle.wire import MessageStream, encode
from tests.daemon.conftest import DaemonProcess


def _framed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@pytest.fixture
def raw(daemon: DaemonProcess) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(daemon.socket_path)
    try:
        yield sock
    finally:
        sock.close()


def _assert_refused_and_closed(sock: socket.socket, client: DaemonClient) -> None:
    stream = MessageStream(sock)
    answer = stream.read()
    assert answer is not None
    assert answer["id"] is None and answer["ok"] is False
    assert answer["error"]["code"] == "bad_request"
    assert stream.read() is None  # the daemon hung up
    assert client.ping(b"others are fine") == b"others are fine"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(struct.pack(">I", 3) + b"\xff\xff\xff", id="not-cbor"),
        pytest.param(struct.pack(">I", 2) + b"\x82\x01", id="cbor-array"),
        pytest.param(_framed(cbor2.dumps({"v": 1.5, "id": 1, "op": "ping"})), id="float"),
        pytest.param(
            struct.pack(">I", 5) + b"\xa1\x61v\xc1\x01",  # {"v": tag 1 (1)}
            id="tagged",
        ),
        pytest.param(encode({"v": 1, "op": "ping"}), id="missing-id"),
        pytest.param(encode({"v": 1, "id": 1}), id="missing-op"),
        pytest.param(encode({"v": 1, "id": -1, "op": "ping"}), id="negative-id"),
    ],
)
def test_malformed_message_is_answered_then_the_connection_closed(
    raw: socket.socket, client: DaemonClient, payload: bytes
) -> None:
    raw.sendall(payload)
    _assert_refused_and_closed(raw, client)


def test_non_canonical_cbor_is_refused(raw: socket.socket, client: DaemonClient) -> None:
    body = b"\xa3\x62op\x64ping\x61v\x01\x62id\x01"  # keys not in canonical order
    raw.sendall(struct.pack(">I", len(body)) + body)
    _assert_refused_and_closed(raw, client)


def test_unknown_operation_keeps_the_connection(raw: socket.socket) -> None:
    stream = MessageStream(raw)
    stream.write({"v": 1, "id": 7, "op": "format_the_disk"})
    answer = stream.read()
    assert answer is not None and answer["id"] == 7
    assert answer["error"]["code"] == "bad_request"
    stream.write({"v": 1, "id": 8, "op": "ping", "args": {"data": b"ok"}})
    answer = stream.read()
    assert answer is not None and answer["result"] == {"data": b"ok"}


def test_other_api_version_is_refused_and_the_connection_kept(raw: socket.socket) -> None:
    stream = MessageStream(raw)
    stream.write({"v": 2, "id": 1, "op": "devices"})
    answer = stream.read()
    assert answer is not None and answer["error"]["code"] == "unsupported_version"
    stream.write({"v": 1, "id": 2, "op": "devices"})
    answer = stream.read()
    assert answer is not None and answer["ok"] is True


@pytest.mark.parametrize(
    "args",
    [
        {"data": "text, not bytes"},
        {},
        {"data": b"x", "extra": 1},
        ["not", "a", "map"],
    ],
)
def test_wrong_arguments_are_a_bad_request(raw: socket.socket, args: Any) -> None:
    stream = MessageStream(raw)
    stream.write({"v": 1, "id": 3, "op": "ping", "args": args})
    answer = stream.read()
    assert answer is not None and answer["error"]["code"] == "bad_request"


def test_a_client_vanishing_mid_message_does_not_disturb_others(
    daemon: DaemonProcess, client: DaemonClient
) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(daemon.socket_path)
    sock.sendall(struct.pack(">I", 1000) + b"\xa1" + b"x" * 10)  # promises 1000 bytes, sends 11
    sock.close()
    assert client.ping(b"fine") == b"fine"
    assert 'reason="connection lost"' in daemon.log() or "reason=connection" in daemon.log()
