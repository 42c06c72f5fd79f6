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

import enum
import struct
from binascii import crc_hqx
from typing import NamedTuple
from zlib import crc32

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


# Lookup by code without the cost of calling the enum (the decoder is on the hot path): every
# byte value indexes it, None for codes that are not frame types.
_FRAME_TYPES = tuple({int(t): t for t in FrameType}.get(code) for code in range(256))


class Frame(NamedTuple):
    """One intact frame. A tuple because the decoder makes one per frame and a tuple is the
    cheapest immutable record Python builds; equality is still only between frames."""

    type: FrameType
    seq: int
    payload: bytes
    flags: int = 0
    version: int = LINK_VERSION

    def __eq__(self, other: object) -> bool:
        return type(other) is Frame and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__


# A checked header's fields: type, seq, flags, version, payload length.
_Head = tuple[FrameType, int, int, int, int]

# Builds a Frame from its five fields without the keyword-argument handling of Frame(...):
# the decoder always has all five, already checked.
_new_tuple = tuple.__new__
_pack_header = HEADER.pack
_pack_check = _HCHECK.pack
_pack_crc = _CRC.pack
_unpack_header = _HEADER_WITH_CHECK.unpack_from
_unpack_crc = _CRC.unpack_from
_CHECKED = HEADER.size  # the header bytes its check covers


def encode_frame(
    ftype: FrameType, seq: int, payload: bytes, flags: int = 0, version: int = LINK_VERSION
) -> bytes:
    """Encode one frame. Raises FrameLengthError when the payload exceeds MAX_PAYLOAD."""
    length = len(payload)
    if length > MAX_PAYLOAD:
        raise FrameLengthError(
            f"payload of {length} bytes exceeds the {MAX_PAYLOAD}-byte frame limit; "
            "split the data across several commands"
        )
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"sequence number {seq} is outside 0..255")
    header = _pack_header(MAGIC, version, ftype, flags, seq, length)
    head = header + _pack_check(crc_hqx(header, 0xFFFF))
    # The CRC-32 runs on over head then payload, so head + payload is built only once.
    return b"".join((head, payload, _pack_crc(crc32(payload, crc32(head)))))


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
        # The checked header heading the buffer while its frame is incomplete, and that frame's
        # length: until that many bytes are in there is nothing to parse again (a long frame
        # arrives in many 64-byte packets), and then only its CRC is left to check.
        self._head: _Head | None = None
        self._pending = 0
        self.discarded = 0  # bytes dropped while looking for a start marker

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
        self._head = None
        self._pending = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame | FrameError]:
        buf = self._buf
        if not buf and type(data) is bytes and len(data) >= HEADER_SIZE:
            # Fast path for a transfer, or the first packet of one, that starts with a good
            # header: parse it straight from the chunk instead of copying it into the buffer.
            # The same checks as _check_header, without building an error: anything that fails
            # one, or a chunk holding more than one frame, takes the general path, which reports.
            magic, version, ftype, flags, seq, length, check = _unpack_header(data)
            frame_type = _FRAME_TYPES[ftype]
            if (
                magic == MAGIC
                and check == crc_hqx(data[:_CHECKED], 0xFFFF)
                and version == self._version
                and length <= self._max_payload
                and frame_type is not None
            ):
                end = HEADER_SIZE + length
                total = end + CRC_SIZE
                if len(data) == total:
                    if _unpack_crc(data, end)[0] == crc32(data[:end]):
                        payload = data[HEADER_SIZE:end]
                        return [_new_tuple(Frame, (frame_type, seq, payload, flags, version))]
                elif len(data) < total:
                    buf += data
                    self._head = (frame_type, seq, flags, version, length)
                    self._pending = total
                    return []
        out: list[Frame | FrameError] = []
        if len(data) <= self._limit - len(buf):  # the usual case: one USB packet
            buf += data
            if len(buf) >= self._pending:
                self._drain(out)
            return out
        view = memoryview(data)
        while view:
            room = self._limit - len(buf)
            buf += view[:room]
            view = view[room:]
            self._drain(out)
        return out

    def _check_header(self, data: bytes | bytearray) -> _Head | FrameError:
        """The fields of the header that starts ``data``, or what is wrong with it."""
        _, version, ftype, flags, seq, length, check = _unpack_header(data)
        if check != crc_hqx(data[:_CHECKED], 0xFFFF):
            return FrameHeaderError("frame header check failed; resynchronising")
        if version != self._version:
            return FrameVersionError(
                f"link version {version} is not supported (want {self._version})"
            )
        if length > self._max_payload:
            return FrameLengthError(
                f"frame announces {length} payload bytes, limit is {self._max_payload}"
            )
        frame_type = _FRAME_TYPES[ftype]
        if frame_type is None:
            return FrameTypeError(f"unknown frame type 0x{ftype:02x}")
        return frame_type, seq, flags, version, length

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self.discarded += count

    def _drain(self, out: list[Frame | FrameError]) -> None:
        buf = self._buf
        while True:
            head = self._head
            if head is None:
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
                head = self._check_header(buf)
                if type(head) is not tuple:
                    self._drop(1)
                    out.append(head)
                    continue
                self._head = head
                self._pending = HEADER_SIZE + head[4] + CRC_SIZE
            total = self._pending
            if len(buf) < total:
                return
            self._head = None
            self._pending = 0
            frame = _frame_at(buf, head)
            if frame is None:
                # Drop only the marker: a good frame may start inside the damaged one.
                self._drop(1)
                out.append(
                    FrameCrcError(f"CRC mismatch on a {head[4]}-byte frame; resynchronising")
                )
                continue
            out.append(frame)
            del buf[:total]


def _frame_at(data: bytes | bytearray, head: _Head) -> Frame | None:
    """The frame that starts ``data`` under its checked header, or None when its CRC fails."""
    frame_type, seq, flags, version, length = head
    end = HEADER_SIZE + length
    if _unpack_crc(data, end)[0] != crc32(data[:end]):
        return None
    return _new_tuple(Frame, (frame_type, seq, bytes(data[HEADER_SIZE:end]), flags, version))
