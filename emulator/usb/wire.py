"""Framing of the virtual cable's TCP stream: a 4-byte big-endian length, then one message.

A message is a CBOR map (control operations, hotplug events, errors) or, on the hot path of bulk
transfers, a fixed binary record whose first byte is a transfer kind below 0x20 (a CBOR map always
starts with 0xa0 or above): a PING over the cable then costs a few struct packs rather than CBOR
encoders, which have a fixed cost of microseconds each.

Both ends treat what they receive as untrusted: a length over ``MAX_MESSAGE`` or bytes that are
not a CBOR map or a known transfer record end the connection with ``WireError``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import cbor2

MAX_MESSAGE = 1 << 20
# How long a receive polls (yielding the CPU between tries) before it blocks. A blocked receiver
# lets its CPU go idle, and waking an idle CPU (a halted virtual CPU above all) costs tens of
# microseconds, more than the rest of a PING round trip; an answer or the next request usually
# comes within this window, so the exchange stays on running CPUs. Past it, receiving blocks.
POLL_BEFORE_BLOCKING_NS = 50_000
_LEN = struct.Struct(">I")
_RECV_CHUNK = 1 << 16

# Transfer records: kind byte, then fields, then the data.
XFER_WRITE = 0x01  # endpoint, timeout ms, prefetch size (0: none) | data
XFER_READ = 0x02  # endpoint, timeout ms, size | (no data)
XFER_REPLY = 0x03  # status (0 or a libusb error), count written, IN status | IN data
_REQUEST = struct.Struct(">BBII")
_REPLY = struct.Struct(">BiIi")
# The same heads behind the length prefix: a transfer message is one pack and one concatenation.
_FRAMED_REQUEST = struct.Struct(">I" + _REQUEST.format[1:])
_FRAMED_REPLY = struct.Struct(">I" + _REPLY.format[1:])
IN_READY = 0  # the IN data follows
IN_NONE = 1  # nothing to read yet: the host asks with a read


class WireError(ConnectionError):
    """The peer sent something that is not a cable message, or went away."""


@dataclass(frozen=True, slots=True)
class TransferRequest:
    kind: int  # XFER_WRITE or XFER_READ
    endpoint: int
    timeout_ms: int
    size: int  # prefetch size for a write, buffer size for a read
    data: bytes


@dataclass(frozen=True, slots=True)
class TransferReply:
    status: int  # 0, or the libusb error code of the transfer
    count: int  # bytes written
    in_status: int  # IN_READY, IN_NONE, or the libusb error of the IN transfer
    data: bytes


def encode_request(kind: int, endpoint: int, timeout_ms: int, size: int, data: bytes) -> bytes:
    """A whole transfer-request message, length prefix included (for ``Channel.send_framed``)."""
    head = _FRAMED_REQUEST.pack(_REQUEST.size + len(data), kind, endpoint, timeout_ms, size)
    return head + data


def encode_reply(status: int, count: int, in_status: int, data: bytes) -> bytes:
    """A whole transfer-reply message, length prefix included (for ``Channel.send_framed``)."""
    head = _FRAMED_REPLY.pack(_REPLY.size + len(data), XFER_REPLY, status, count, in_status)
    return head + data


def _decode_transfer(body: memoryview) -> TransferRequest | TransferReply:
    kind = body[0]
    if kind in (XFER_WRITE, XFER_READ) and len(body) >= _REQUEST.size:
        _, endpoint, timeout, size = _REQUEST.unpack_from(body)
        return TransferRequest(kind, endpoint, timeout, size, bytes(body[_REQUEST.size :]))
    if kind == XFER_REPLY and len(body) >= _REPLY.size:
        _, status, count, in_status = _REPLY.unpack_from(body)
        return TransferReply(status, count, in_status, bytes(body[_REPLY.size :]))
    raise WireError(f"malformed cable transfer record (kind {kind}, {len(body)} bytes)")


def connect(address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"cable address {text!r} must be HOST:PORT, e.g. 127.0.0.1:7001")
    return host, int(port)


Received = dict[str, Any] | TransferRequest | TransferReply


class Channel:
    """One end of a cable connection: whole messages in, whole messages out.

    Receiving reads into one preallocated buffer (``recv_into``), usually a whole message per
    system call, polling briefly before it blocks (``POLL_BEFORE_BLOCKING_NS``); sending is one
    ``sendall`` per message."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray(_RECV_CHUNK)
        self._view = memoryview(self._buf)
        self._start = 0  # unread bytes are _buf[_start:_end]
        self._end = 0

    def send(self, message: dict[str, Any]) -> None:
        self.send_body(cbor2.dumps(message))

    def send_body(self, body: bytes) -> None:
        self.send_framed(_LEN.pack(len(body)) + body)

    def send_framed(self, message: bytes) -> None:
        """Send a message that already carries its length prefix (``encode_request``/``reply``)."""
        self.sock.sendall(message)

    def receive(self) -> Received:
        self._fill(_LEN.size)
        (length,) = _LEN.unpack_from(self._buf, self._start)
        if length > MAX_MESSAGE or length == 0:
            raise WireError(f"cable message of {length} bytes is outside 1..{MAX_MESSAGE}")
        self._fill(_LEN.size + length)
        start = self._start + _LEN.size
        try:
            return self._decode(self._view[start : start + length])
        finally:
            self._start = start + length
            if self._start == self._end:
                self._start = self._end = 0  # the usual case: the next message starts at 0

    @staticmethod
    def _decode(body: memoryview) -> Received:
        if body[0] < 0x20:
            return _decode_transfer(body)
        try:
            message = cbor2.loads(body)
        except Exception as exc:  # cbor2 raises several types for malformed input
            raise WireError(f"malformed cable message: {exc}") from None
        if not isinstance(message, dict):
            raise WireError("cable messages must be CBOR maps")
        return message

    def receive_map(self) -> dict[str, Any]:
        """The next message, which must be a CBOR map (control replies, events)."""
        message = self.receive()
        if not isinstance(message, dict):
            raise WireError("expected a cable control message, got a transfer record")
        return message

    def _fill(self, count: int) -> None:
        """Make ``count`` unread bytes available in the buffer."""
        while self._end - self._start < count:
            if self._start + count > len(self._buf):
                self._compact(count)
            received = self._recv_into(self._view[self._end :])
            if not received:
                raise WireError("the other end of the cable hung up")
            self._end += received

    def _recv_into(self, view: memoryview) -> int:
        deadline = time.perf_counter_ns() + POLL_BEFORE_BLOCKING_NS
        while True:
            try:
                return self.sock.recv_into(view, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if time.perf_counter_ns() > deadline:
                    return self.sock.recv_into(view)
                os.sched_yield()  # a peer sharing this CPU runs first

    def _compact(self, count: int) -> None:
        unread = self._buf[self._start : self._end]
        if count > len(self._buf):
            self._buf = bytearray(max(count, 2 * len(self._buf)))
            self._view = memoryview(self._buf)
        self._buf[: len(unread)] = unread
        self._start, self._end = 0, len(unread)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already disconnected
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
