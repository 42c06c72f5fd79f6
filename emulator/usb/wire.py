"""Framing of the virtual cable's TCP stream: a 4-byte big-endian length, then one CBOR map.

Both ends treat what they receive as untrusted: a length over ``MAX_MESSAGE`` or bytes that are
not a CBOR map end the connection with ``WireError``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

import cbor2

MAX_MESSAGE = 1 << 20
_LEN = struct.Struct(">I")


class WireError(ConnectionError):
    """The peer sent something that is not a cable message, or went away."""


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


class Channel:
    """One end of a cable connection: whole messages in, whole messages out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def send(self, message: dict[str, Any]) -> None:
        body = cbor2.dumps(message)
        self.sock.sendall(_LEN.pack(len(body)) + body)

    def receive(self) -> dict[str, Any]:
        head = self._take(_LEN.size)
        (length,) = _LEN.unpack(head)
        if length > MAX_MESSAGE:
            raise WireError(f"cable message of {length} bytes is over the {MAX_MESSAGE} limit")
        try:
            message = cbor2.loads(self._take(length))
        except Exception as exc:  # cbor2 raises several types for malformed input
            raise WireError(f"malformed cable message: {exc}") from None
        if not isinstance(message, dict):
            raise WireError("cable messages must be CBOR maps")
        return message

    def _take(self, count: int) -> bytes:
        buf = self._buf
        while len(buf) < count:
            chunk = self.sock.recv(max(65536, count - len(buf)))
            if not chunk:
                raise WireError("the other end of the cable hung up")
            buf += chunk
        data = bytes(buf[:count])
        del buf[:count]
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already disconnected
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
