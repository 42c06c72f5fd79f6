"""Link layer: frames with a checked header and a CRC-32, and an incremental decoder.

Layout (big-endian), see docs/protocol.md §2:

    0  2  magic "TP"
    2  1  link version (1)
    3  1  frame type
    4  1  flags
    5  1  sequence number
    6  2  payload length
    8  2  header check: CRC-16/CCITT-FALSE of bytes 0..7
    10 N  payload
    .. 4  CRC-32 (zlib) of bytes 0..10+N-1

The header check lets the decoder reject a false start marker found inside garbage at once,
instead of waiting for a bogus length's worth of bytes and swallowing the good frames behind it.
"""

from __future__ import annotations

import binascii
import enum
import struct
import zlib
from dataclasses import dataclass

from protocol import LINK_VERSION
from protocol.errors import (
    FrameCrcError,
    FrameError,
    FrameHeaderError,
    FrameLengthError,
    FrameTypeError,
    FrameVersionError,
)

MAGIC = b"TP"
HEADER = struct.Struct(">2sBBBBH")
HEADER_SIZE = HEADER.size + 2
CRC_SIZE = 4
MAX_PAYLOAD = 8192
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
_CRC = struct.Struct(">I")
_HCHECK = struct.Struct(">H")
_HEADER_WITH_CHECK = struct.Struct(">2sBBBBHH")


class FrameType(enum.IntEnum):
    REQUEST = 0x01
    RESPONSE = 0x02
    KEEPALIVE = 0x03
    CANCEL = 0x04
    LINK_ERROR = 0x05  # the receiver rejected a frame; payload: 1 status byte


class FrameFlag(enum.IntFlag):
    NONE = 0
    RETRANSMIT = 0x01  # the host resends a request it got no answer to


# Lookup by code without the cost of calling the enum (the decoder is on the hot path).
_FRAME_TYPES = {int(t): t for t in FrameType}


@dataclass(frozen=True, slots=True)
class Frame:
    type: FrameType
    seq: int
    payload: bytes
    flags: int = 0
    version: int = LINK_VERSION


def _header_check(header: bytes | bytearray | memoryview) -> int:
    return binascii.crc_hqx(header, 0xFFFF)


def encode_frame(
    ftype: FrameType, seq: int, payload: bytes, flags: int = 0, version: int = LINK_VERSION
) -> bytes:
    """Encode one frame. Raises FrameLengthError when the payload exceeds MAX_PAYLOAD."""
    if len(payload) > MAX_PAYLOAD:
        raise FrameLengthError(
            f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte frame limit; "
            "split the data across several commands"
        )
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"sequence number {seq} is outside 0..255")
    header = HEADER.pack(MAGIC, version, ftype, flags, seq, len(payload))
    head = header + _HCHECK.pack(_header_check(header))
    body = head + payload
    return body + _CRC.pack(zlib.crc32(body))


class FrameDecoder:
    """Turns bytes, in any chunking, into frames and typed errors.

    ``feed`` returns what became complete: ``Frame`` objects and, for each rejected frame, the
    ``FrameError`` describing it (returned, not raised, so the frames behind it are not lost).
    The buffer never grows past one maximum frame, whatever is fed.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD, version: int = LINK_VERSION) -> None:
        self._max_payload = max_payload
        self._limit = HEADER_SIZE + max_payload + CRC_SIZE
        self._version = version
        self._buf = bytearray()
        # Length of the frame whose valid header heads the buffer; until that many bytes are in,
        # there is nothing to parse again (a long frame arrives in many 64-byte packets).
        self._pending = 0
        self.discarded = 0  # bytes dropped while looking for a start marker

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
        self._pending = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        if len(data) <= self._limit - len(self._buf):  # the usual case: one USB packet
            self._buf += data
            if len(self._buf) >= self._pending:
                self._drain(out)
            return out
        view = memoryview(data)
        while view:
            room = self._limit - len(self._buf)
            self._buf += view[:room]
            view = view[room:]
            self._drain(out)
        return out

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self.discarded += count

    def _drain(self, out: list[Frame | FrameError]) -> None:
        buf = self._buf
        self._pending = 0
        while True:
            start = buf.find(MAGIC)
            if start < 0:
                # Keep a trailing 'T': it may be the first half of the next marker.
                keep = 1 if buf[-1:] == MAGIC[:1] else 0
                self._drop(len(buf) - keep)
                return
            if start:
                self._drop(start)
            if len(buf) < HEADER_SIZE:
                return
            _, version, ftype, flags, seq, length, check = _HEADER_WITH_CHECK.unpack_from(buf)
            if check != _header_check(buf[: HEADER.size]):
                self._drop(1)
                out.append(FrameHeaderError("frame header check failed; resynchronising"))
                continue
            if version != self._version:
                self._drop(1)
                out.append(
                    FrameVersionError(
                        f"link version {version} is not supported (want {self._version})"
                    )
                )
                continue
            if length > self._max_payload:
                self._drop(1)
                out.append(
                    FrameLengthError(
                        f"frame announces {length} payload bytes, limit is {self._max_payload}"
                    )
                )
                continue
            frame_type = _FRAME_TYPES.get(ftype)
            if frame_type is None:
                self._drop(1)
                out.append(FrameTypeError(f"unknown frame type 0x{ftype:02x}"))
                continue
            end = HEADER_SIZE + length
            total = end + CRC_SIZE
            if len(buf) < total:
                self._pending = total
                return
            (crc,) = _CRC.unpack_from(buf, end)
            if crc != zlib.crc32(memoryview(buf)[:end]):
                # Drop only the marker: a good frame may start inside the damaged one.
                self._drop(1)
                out.append(FrameCrcError(f"CRC mismatch on a {length}-byte frame; resynchronising"))
                continue
            out.append(Frame(frame_type, seq, bytes(buf[HEADER_SIZE:end]), flags, version))
            del buf[:total]
