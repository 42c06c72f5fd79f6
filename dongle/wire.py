"""Framing of the daemon's Unix-socket API (docs/daemon-api.md §2), shared by daemon and client.

    message = length (4 bytes, big-endian) | canonical CBOR map of at most MAX_MESSAGE bytes

The map is decoded with the protocol package's whitelist decoder, so a hostile peer cannot make
either side build tags, floats, deep nesting or duplicate keys.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from dongle.errors import BadRequest
from protocol.errors import MessageError
from protocol.messages import canonical_cbor, decode_map

API_VERSION = 1
API_VERSIONS = (1,)
MAX_MESSAGE = 64 * 1024
_LENGTH = struct.Struct(">I")
_RECV_SIZE = MAX_MESSAGE + _LENGTH.size


class WireError(BadRequest):
    """A message on the socket is oversized or not a well-formed CBOR map."""


def encode(message: dict[str, Any]) -> bytes:
    """One framed message; ValueError if it would exceed MAX_MESSAGE (a bug of the sender)."""
    body = canonical_cbor(message)
    if len(body) > MAX_MESSAGE:
        raise ValueError(f"message of {len(body)} bytes exceeds the {MAX_MESSAGE}-byte limit")
    return _LENGTH.pack(len(body)) + body


class MessageStream:
    """Reads and writes framed messages on one connected socket.

    Reading is buffered so pipelined messages cost one ``recv`` for several. Not thread-safe:
    each side gives one thread the reading end; writers serialise themselves.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def read(self) -> dict[str, Any] | None:
        """The next message, or None when the peer closed the connection between messages.

        Raises WireError for an oversized or malformed message and ConnectionError when the
        peer vanished in the middle of one.
        """
        header = self._take(_LENGTH.size)
        if header is None:
            return None
        (length,) = _LENGTH.unpack(header)
        if length > MAX_MESSAGE:
            raise WireError(f"message of {length} bytes exceeds the {MAX_MESSAGE}-byte limit")
        body = self._take(length)
        if body is None:
            raise ConnectionError("the peer closed the connection in the middle of a message")
        try:
            return decode_map(body)
        except MessageError as exc:
            raise WireError(f"malformed message: {exc}") from None

    def write(self, message: dict[str, Any]) -> None:
        self.sock.sendall(encode(message))

    def _take(self, size: int) -> bytes | None:
        while len(self._buffer) < size:
            chunk = self.sock.recv(_RECV_SIZE)
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
