"""Framing of the daemon's Unix-socket API (docs/daemon-api.md §2), shared by daemon and client.

    message = length (4 bytes, big-endian) | canonical CBOR map of at most MAX_MESSAGE bytes

The map is decoded with the protocol package's whitelist decoder, so a hostile peer cannot make
either side build tags, floats, deep nesting or duplicate keys.

The daemon reads and writes with deadlines (``read(idle_timeout=, message_timeout=)``,
``write(timeout=)``) on a blocking socket, polling before each non-blocking call, so a peer
that stalls mid-message or stops reading costs it a bounded wait, never a stuck thread. The
client leaves them out and relies on its socket's own timeout.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from typing import Any

from dongle.errors import BadRequest, MessageTimeout, MessageTooLarge
from protocol.errors import MessageError
from protocol.messages import canonical_cbor, decode_map

API_VERSION = 1
API_VERSIONS = (1,)
MAX_MESSAGE = 64 * 1024
_LENGTH = struct.Struct(">I")
_RECV_SIZE = MAX_MESSAGE + _LENGTH.size


class WireError(BadRequest):
    """A message on the socket is not a well-formed CBOR map."""


class IdleTimeout(Exception):
    """No message began within the idle time-out: the peer is quiet, not at fault."""


class SendTimeout(Exception):
    """The peer did not take a message within the write time-out: it is not reading."""


def _too_large(length: int) -> MessageTooLarge:
    return MessageTooLarge(
        f"a message of {length} bytes exceeds the dongle daemon's {MAX_MESSAGE}-byte limit: "
        "send less data in one request",
        MAX_MESSAGE,
    )


def encode(message: dict[str, Any]) -> bytes:
    """One framed message; MessageTooLarge if it would exceed MAX_MESSAGE."""
    body = canonical_cbor(message)
    if len(body) > MAX_MESSAGE:
        raise _too_large(len(body))
    return _LENGTH.pack(len(body)) + body


def _wait(sock: socket.socket, events: int, timeout: float | None) -> bool:
    """Whether ``sock`` became ready for ``events`` within ``timeout`` seconds (None: ever)."""
    poller = select.poll()
    poller.register(sock, events)
    return bool(poller.poll(None if timeout is None else max(timeout, 0.0) * 1000))


class MessageStream:
    """Reads and writes framed messages on one connected socket.

    Reading is buffered so pipelined messages cost one ``recv`` for several. Not thread-safe:
    each side gives one thread the reading end; writers serialise themselves.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._idle_timeout: float | None = None
        self._message_timeout: float | None = None
        self._begun_at: float | None = None  # monotonic time the current message's first byte came

    def read(
        self, *, idle_timeout: float | None = None, message_timeout: float | None = None
    ) -> dict[str, Any] | None:
        """The next message, or None when the peer closed the connection between messages.

        Raises MessageTooLarge for an oversized message, WireError for a malformed one and
        ConnectionError when the peer vanished in the middle of one. With time-outs: IdleTimeout
        when no message begins within ``idle_timeout`` seconds, MessageTimeout when a message is
        not complete ``message_timeout`` seconds after its first byte arrived.
        """
        self._idle_timeout = idle_timeout
        self._message_timeout = message_timeout
        self._begun_at = time.monotonic() if self._buffer else None
        header = self._take(_LENGTH.size)
        if header is None:
            return None
        (length,) = _LENGTH.unpack(header)
        if length > MAX_MESSAGE:
            raise _too_large(length)
        body = self._take(length)
        if body is None:
            raise ConnectionError("the peer closed the connection in the middle of a message")
        try:
            return decode_map(body)
        except MessageError as exc:
            raise WireError(f"malformed message: {exc}") from None

    def write(self, message: dict[str, Any], *, timeout: float | None = None) -> None:
        """Send one message; with ``timeout``, SendTimeout if the peer has not taken all of it
        within that many seconds (the rest is then unsent: the connection must end)."""
        data = encode(message)
        if timeout is None:
            self.sock.sendall(data)
            return
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view, socket.MSG_DONTWAIT) :]
            except BlockingIOError:
                if not _wait(self.sock, select.POLLOUT, deadline - time.monotonic()):
                    raise SendTimeout(f"the peer took no data for {timeout:g} s") from None

    def _receive(self) -> bytes:
        if self._idle_timeout is None and self._message_timeout is None:
            return self.sock.recv(_RECV_SIZE)
        if self._begun_at is None:
            if not _wait(self.sock, select.POLLIN, self._idle_timeout):
                raise IdleTimeout(f"no request for {self._idle_timeout:g} s")
        else:
            limit = self._message_timeout
            left = None if limit is None else self._begun_at + limit - time.monotonic()
            if not _wait(self.sock, select.POLLIN, left):
                raise MessageTimeout(
                    f"a message was begun but not finished within {limit:g} s: send each "
                    "message whole"
                )
        chunk = self.sock.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
        if self._begun_at is None:
            self._begun_at = time.monotonic()
        return chunk

    def _take(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            chunk = self._receive()
            if not chunk:
                if self._buffer:
                    raise ConnectionError(
                        "the peer closed the connection in the middle of a message"
                    )
                return None
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data
