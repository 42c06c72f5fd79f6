"""Fuzzing the daemon's socket protocol: random and mutated messages, sent to the real daemon
process driving the virtual dongle. Each gets a valid reply or a typed error (never
``internal``), the daemon never dies, and a good request still works afterwards."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dongle.daemon.ops import DAEMON_OPS, DONGLE_OPS
from dongle.wire import MAX_MESSAGE, MessageStream
from protocol.messages import canonical_cbor
from tests.daemon.conftest import DaemonProcess

TYPED_CODES = frozenset(
    {
        "bad_request",
        "too_large",
        "message_timeout",
        "unsupported_version",
        "access_denied",
        "too_many_connections",
        "no_dongle",
        "several_dongles",
        "busy",
        "lease_lost",
        "dongle_removed",
        "dongle_timeout",
        "link_error",
        "dongle",
    }
)
_OPS = sorted({*DAEMON_OPS, *DONGLE_OPS})
# Each operation's arguments and their types, so that requests get past the shape checks.
_ARGS: dict[str, tuple[tuple[str, type], ...]] = {
    **{name: op.args for name, op in DONGLE_OPS.items()},
    "hello": (("client", str), ("priority", str), ("versions", list)),
    "acquire": (("wait_ms", int),),
}

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
# Values of each type, half of the strings near or over the limits: one USB frame (8 KiB) and
# one socket message (64 KiB).
_TYPED: dict[type, st.SearchStrategy[Any]] = {
    bytes: st.binary(max_size=64) | st.binary(min_size=7000, max_size=70_000),
    str: st.text(max_size=20) | st.text(min_size=7000, max_size=9000),
    int: st.integers(-(2**64), 2**64 - 1),
    dict: st.dictionaries(st.text(max_size=8), plain, max_size=6),
    list: st.lists(plain, max_size=4),
}


def _well_formed(op: str) -> st.SearchStrategy[dict[str, Any]]:
    """A request for ``op`` whose arguments have the right names and, mostly, types."""
    typed = st.fixed_dictionaries({name: _TYPED[kind] | plain for name, kind in _ARGS.get(op, ())})
    return st.fixed_dictionaries(
        {
            "v": st.just(1),
            "id": st.integers(0, 2**63 - 1),
            "op": st.just(op),
            "args": typed | st.dictionaries(st.text(max_size=6), plain, max_size=3),
        }
    )


wild = st.fixed_dictionaries(
    {
        "v": st.just(1) | plain,
        "id": st.integers(0, 2**63 - 1) | plain,
        "op": st.sampled_from(_OPS) | st.text(max_size=12),
    },
    optional={"args": plain, "serial": plain, "extra": plain},
)
requests = st.sampled_from(_OPS).flatmap(_well_formed) | wild


def _framed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid request's encoding with a few bytes replaced, inserted or cut."""
    body = bytearray(canonical_cbor(draw(requests)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        kind = draw(st.sampled_from(["replace", "insert", "cut"]))
        byte = draw(st.integers(0, 255))
        if kind == "insert" or at == len(body):
            body.insert(at, byte)
        elif kind == "replace":
            body[at] = byte
        else:
            del body[at : at + draw(st.integers(1, 8))]
    return _framed(bytes(body))


# What a client may put on the socket: (bytes, whether it then shuts its sending side).
messages = st.one_of(
    st.tuples(requests.map(lambda r: _framed(canonical_cbor(r))), st.just(False)),
    st.tuples(mutated(), st.just(False)),
    st.tuples(st.binary(max_size=200).map(_framed), st.just(False)),
    st.tuples(
        st.integers(MAX_MESSAGE + 1, 2**32 - 1).map(struct.Struct(">I").pack), st.just(False)
    ),
    st.tuples(st.binary(min_size=1, max_size=60), st.just(True)),  # cut short, then EOF
)


def _exchange(path: str, data: bytes, then_eof: bool) -> dict[str, Any] | None:
    """Send ``data``; the daemon's first answer that is not progress or an event, if any."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    with sock:
        sock.connect(path)
        sock.sendall(data)
        if then_eof:
            sock.shutdown(socket.SHUT_WR)
        stream = MessageStream(sock)
        while True:
            try:
                answer = stream.read()
            except ConnectionResetError:
                return None
            if answer is None or ("progress" not in answer and "event" not in answer):
                return answer


def _check(daemon: DaemonProcess, data: bytes, then_eof: bool) -> None:
    answer = _exchange(daemon.socket_path, data, then_eof)
    if answer is None:
        assert then_eof, "a whole message went unanswered"
    elif answer.get("ok") is not True:
        assert answer["error"]["code"] in TYPED_CODES, answer
        assert answer["error"]["message"]
    assert daemon.process.poll() is None, daemon.log()


def _fuzz(daemon: DaemonProcess, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples < 1000,  # the quick run is the same every time
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(messages)
    def run(message: tuple[bytes, bool]) -> None:
        _check(daemon, *message)

    run()
    with daemon.client("after-fuzz") as client:
        assert client.ping(b"good request") == b"good request"
    assert "event=internal_error" not in daemon.log()


def test_fuzzed_messages_get_typed_answers(daemon: DaemonProcess) -> None:
    _fuzz(daemon, 600)


@pytest.mark.slow
def test_fuzzed_messages_get_typed_answers_long(daemon: DaemonProcess) -> None:
    _fuzz(daemon, 5000)
