"""Message layer: commands, status codes, request ids and canonical-CBOR parameters.

Frame payloads (docs/protocol.md §3):

    REQUEST    command (1) | request id (4) | CBOR map of parameters
    RESPONSE   status  (1) | request id (4) | CBOR map of results
    KEEPALIVE  request id (4) | keepalive status (1)
    CANCEL     request id (4)
    LINK_ERROR status (1)

CBOR is encoded canonically (RFC 8949 §4.2.1) and decoded with a whitelist of plain types, so a
hostile peer cannot make us build tags, floats, huge nesting or duplicate keys.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2

from protocol.errors import MessageError
from protocol.frame import Frame, FrameType, encode_frame


class Command(enum.IntEnum):
    PING = 0x01
    GET_INFO = 0x02
    GET_KEY_AGREEMENT = 0x03
    ATTEST = 0x10
    GENERATE_KEY = 0x11
    READ_CERT = 0x12
    WRITE_CERT = 0x13
    SET_PIN = 0x20
    CHANGE_PIN = 0x21
    GET_PIN_TOKEN = 0x22
    UNBLOCK_PIN = 0x23
    SIGN_PAYMENT = 0x30
    SIGN_SESSION = 0x31
    LOCK = 0x40
    WIPE = 0x41
    CARD_STATUS = 0x50
    CARD_TRANSMIT = 0x51


# Commands a host may resend after a lost answer without any effect beyond the first run.
# SIGN_PAYMENT is listed because the dongle answers a repeated payment id with the same signature.
# CARD_TRANSMIT is not: the card would run the APDU again (an UPDATE, a fresh GET CHALLENGE).
IDEMPOTENT_COMMANDS = frozenset(
    {
        Command.PING,
        Command.GET_INFO,
        Command.GET_KEY_AGREEMENT,
        Command.ATTEST,
        Command.READ_CERT,
        Command.SIGN_PAYMENT,
        Command.SIGN_SESSION,
        Command.CARD_STATUS,
    }
)


class Status(enum.IntEnum):
    OK = 0x00
    INVALID_COMMAND = 0x01
    INVALID_PARAMETER = 0x02
    INVALID_LENGTH = 0x03
    INVALID_SEQ = 0x04
    TIMEOUT = 0x05
    BUSY = 0x06
    WRONG_STATE = 0x07
    UNSUPPORTED_VERSION = 0x08
    PIN_INVALID = 0x10
    PIN_BLOCKED = 0x11
    PIN_AUTH_INVALID = 0x12
    PIN_NOT_SET = 0x13
    PIN_POLICY = 0x14
    PIN_TOKEN_EXPIRED = 0x15
    PUK_INVALID = 0x16
    WIPED = 0x17
    KEY_MISMATCH = 0x20
    CONFLICT = 0x21
    CANCELLED = 0x2D
    STORE_FAILURE = 0x30
    CARD_CHANGED = 0x31
    CARD_ABSENT = 0x32
    OTHER = 0x7F


# CARD_TRANSMIT's ``apdu``: a short command APDU, from the bare header (CLA INS P1 P2) to
# header, Lc, 255 data bytes and Le.
MIN_APDU = 4
MAX_APDU = 261


class KeepaliveStatus(enum.IntEnum):
    PROCESSING = 0x01
    WAITING = 0x02


class Lifecycle(enum.StrEnum):
    FACTORY = "factory"
    KEY_GENERATED = "key_generated"
    CERTIFIED = "certified"
    LOCKED = "locked"
    PIN_BLOCKED = "pin_blocked"


# Lookups by code without the cost of calling the enum (decode_message is on the hot path).
_COMMANDS = {int(c): c for c in Command}
_STATUSES = {int(s): s for s in Status}

_ID = struct.Struct(">I")
_HEAD = struct.Struct(">BI")
_KEEPALIVE = struct.Struct(">IB")
MAX_DEPTH = 8
_EMPTY_MAP = b"\xa0"  # canonical CBOR of {}: most commands and answers carry no parameters
_WITH_MAP = (FrameType.REQUEST, FrameType.RESPONSE)
_PLAIN = (bytes, str, bool, int, type(None))


@dataclass(frozen=True, slots=True)
class Request:
    command: Command
    request_id: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    status: Status
    request_id: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Keepalive:
    request_id: int
    status: KeepaliveStatus


@dataclass(frozen=True, slots=True)
class Cancel:
    request_id: int


@dataclass(frozen=True, slots=True)
class LinkError:
    status: Status


Message = Request | Response | Keepalive | Cancel | LinkError


def canonical_cbor(value: Any) -> bytes:
    """Deterministic CBOR encoding: the one byte layout for a given value."""
    if value == {}:
        return _EMPTY_MAP
    return cbor2.dumps(value, canonical=True)


def _check_plain(value: Any, depth: int = 0) -> None:
    """Reject what a message may not hold, and maps whose keys are not in canonical order.

    With every map's keys in canonical order, cbor2's ordinary encoding is the canonical one, so
    ``decode_map`` can compare against it instead of re-sorting everything it re-encodes.
    """
    if depth > MAX_DEPTH:
        raise MessageError(f"CBOR nesting deeper than {MAX_DEPTH}")
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, list):
        for item in value:
            _check_plain(item, depth + 1)
        return
    if isinstance(value, dict):
        previous: tuple[int, bytes] | None = None
        for key, item in value.items():
            if not isinstance(key, str):
                raise MessageError("CBOR map keys must be text strings")
            # Canonical order of text keys: shorter encoding first, then bytewise.
            encoded = key.encode("utf-8")
            order = (len(encoded), encoded)
            if previous is not None and order <= previous:
                raise MessageError("CBOR is not in canonical form (map keys out of order)")
            previous = order
            _check_plain(item, depth + 1)
        return
    raise MessageError(f"CBOR value of type {type(value).__name__} is not allowed")


def decode_map(data: bytes) -> dict[str, Any]:
    """Decode an untrusted CBOR map of plain values; MessageError for anything else."""
    if not data or data == _EMPTY_MAP:
        return {}
    try:
        value = cbor2.loads(
            data,
            max_depth=MAX_DEPTH + 1,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            semantic_decoders={},
            tag_hook=_reject_tag,
        )
    except MessageError:
        raise
    except Exception as exc:  # cbor2 raises several types for malformed input
        raise MessageError(f"malformed CBOR: {exc}") from None
    if not isinstance(value, dict):
        raise MessageError("message parameters must be a CBOR map")
    _check_plain(value)
    # Keys are in canonical order (checked above) and cbor2 always writes shortest forms and
    # definite lengths, so its plain encoding equals the canonical one: any difference means
    # non-shortest integers or lengths, or trailing bytes.
    if cbor2.dumps(value) != data:
        raise MessageError("CBOR is not in canonical form (or has trailing bytes)")
    return value


def _reject_tag(decoder: Any, tag: Any) -> Any:
    raise MessageError(f"CBOR tag {tag.tag} is not allowed")


def _check_id(request_id: int) -> None:
    if not 0 <= request_id <= 0xFFFFFFFF:
        raise ValueError(f"request id {request_id} is outside 0..2^32-1")


def encode_payload(msg: Message) -> tuple[FrameType, bytes]:
    """The frame type and payload bytes that carry ``msg``."""
    if isinstance(msg, Request):
        _check_id(msg.request_id)
        return FrameType.REQUEST, _HEAD.pack(msg.command, msg.request_id) + canonical_cbor(
            msg.params
        )
    if isinstance(msg, Response):
        _check_id(msg.request_id)
        return FrameType.RESPONSE, _HEAD.pack(msg.status, msg.request_id) + canonical_cbor(msg.body)
    if isinstance(msg, Keepalive):
        return FrameType.KEEPALIVE, _KEEPALIVE.pack(msg.request_id, msg.status)
    if isinstance(msg, Cancel):
        return FrameType.CANCEL, _ID.pack(msg.request_id)
    if isinstance(msg, LinkError):
        return FrameType.LINK_ERROR, bytes([msg.status])
    raise TypeError(f"not a protocol message: {msg!r}")


def encode_message(msg: Message, seq: int, flags: int = 0) -> bytes:
    """Encode ``msg`` into one complete frame."""
    ftype, payload = encode_payload(msg)
    return encode_frame(ftype, seq, payload, flags)


def decode_message(frame: Frame) -> Message:
    """Decode the message in an intact frame; MessageError when its payload is malformed."""
    payload = frame.payload
    ftype = frame.type
    if ftype in _WITH_MAP:
        if len(payload) < _HEAD.size:
            raise MessageError(
                f"{ftype.name} payload of {len(payload)} bytes is shorter than its header"
            )
        code, request_id = _HEAD.unpack_from(payload)
        params = decode_map(payload[_HEAD.size :])
        if ftype is FrameType.REQUEST:
            command = _COMMANDS.get(code)
            if command is None:
                raise MessageError(f"unknown command 0x{code:02x}")
            return Request(command, request_id, params)
        status = _STATUSES.get(code)
        if status is None:
            raise MessageError(f"unknown status 0x{code:02x}")
        return Response(status, request_id, params)
    if ftype is FrameType.KEEPALIVE:
        if len(payload) != _KEEPALIVE.size:
            raise MessageError("KEEPALIVE payload must be 5 bytes")
        request_id, code = _KEEPALIVE.unpack(payload)
        try:
            return Keepalive(request_id, KeepaliveStatus(code))
        except ValueError:
            raise MessageError(f"unknown keepalive status 0x{code:02x}") from None
    if ftype is FrameType.CANCEL:
        if len(payload) != _ID.size:
            raise MessageError("CANCEL payload must be 4 bytes")
        return Cancel(_ID.unpack(payload)[0])
    if ftype is FrameType.LINK_ERROR:
        if len(payload) != 1:
            raise MessageError("LINK_ERROR payload must be 1 byte")
        try:
            return LinkError(Status(payload[0]))
        except ValueError:
            raise MessageError(f"unknown status 0x{payload[0]:02x}") from None
    raise MessageError(f"unhandled frame type {ftype!r}")
