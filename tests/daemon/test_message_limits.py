"""Requests too large for the socket or for one USB frame, and input the daemon echoes back:
each gets a typed error saying what to do, never ``internal``."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from dongle.client import DaemonClient
from dongle.errors import MessageTooLarge
from dongle.wire import MAX_MESSAGE, MessageStream
from protocol.frame import MAX_PAYLOAD
from tests.daemon.conftest import DaemonProcess


@pytest.fixture
def stream(daemon: DaemonProcess) -> Iterator[MessageStream]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(daemon.socket_path)
    with sock:
        yield MessageStream(sock)


def _ask(stream: MessageStream, request: dict[str, Any]) -> dict[str, Any]:
    stream.write({"v": 1, "id": 5, **request})
    answer = stream.read()
    assert answer is not None and answer["id"] == 5
    return answer


def test_a_socket_message_over_the_limit_is_too_large_then_closed(
    stream: MessageStream, client: DaemonClient
) -> None:
    stream.sock.sendall(struct.pack(">I", MAX_MESSAGE + 1))
    answer = stream.read()
    assert answer is not None and answer["id"] is None
    assert answer["error"]["code"] == "too_large"
    assert answer["error"]["limit"] == MAX_MESSAGE
    assert "send less data in one request" in answer["error"]["message"]
    assert stream.read() is None
    assert client.ping(b"others are fine") == b"others are fine"


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("ping", {"data": b"p" * (MAX_PAYLOAD + 1)}),
        ("write_cert", {"certificate": b"c" * 60_000}),
        ("sign_session", {"gateway_id": "g" * 20_000, "challenge": b"", "timestamp": 1}),
    ],
    ids=["ping", "write_cert", "sign_session"],
)
def test_a_request_larger_than_one_frame_is_too_large_and_the_connection_kept(
    stream: MessageStream, op: str, args: dict[str, Any]
) -> None:
    error = _ask(stream, {"op": op, "args": args})["error"]
    assert error["code"] == "too_large"
    assert error["limit"] == MAX_PAYLOAD
    assert f"larger than the dongle's {MAX_PAYLOAD}-byte frame" in error["message"]
    assert _ask(stream, {"op": "ping", "args": {"data": b"ok"}})["result"] == {"data": b"ok"}


def test_echoed_input_cannot_make_the_answer_oversized(stream: MessageStream) -> None:
    error = _ask(stream, {"op": "\x00" * 60_000})["error"]  # repr() quadruples each byte
    assert error["code"] == "bad_request"
    assert len(error["message"]) < 400
    error = _ask(stream, {"op": "ping", "args": {"\x01" * 30_000: 0, "\x02" * 30_000: 0}})["error"]
    assert error["code"] == "bad_request" and len(error["message"]) < 400


@pytest.mark.parametrize("versions", [[[1]], [{"v": 1}], [True]])
def test_odd_api_versions_are_unsupported_not_internal(
    stream: MessageStream, versions: object
) -> None:
    answer = _ask(stream, {"op": "hello", "args": {"versions": versions}})
    assert answer["error"]["code"] == "unsupported_version"


def test_the_client_library_refuses_an_oversized_request_itself(client: DaemonClient) -> None:
    with pytest.raises(MessageTooLarge, match="send less data") as caught:
        client.ping(b"x" * MAX_MESSAGE)
    assert caught.value.limit == MAX_MESSAGE
    assert client.ping(b"still connected") == b"still connected"
