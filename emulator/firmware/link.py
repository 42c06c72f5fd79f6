"""The dongle's side of the link layer (docs/protocol.md §2): one frame per received transfer,
sequence numbers and retransmission, LINK_ERROR for undecodable frames, KEEPALIVE and CANCEL.
Requests go to the firmware, card commands to the card slot.

Time only enters through the injected clock. With a timing profile a command "runs" for its cost:
it is executed when the cost has elapsed (at the host's next read), so until then it has changed
nothing and a CANCEL can still drop it.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from emulator.firmware.dongle import Clock, Firmware
from emulator.usb.card_slot import CARD_COMMANDS, CardSlot
from protocol.errors import FrameVersionError, MessageError
from protocol.frame import MAX_FRAME, Frame, FrameDecoder, FrameType
from protocol.messages import (
    Command,
    Keepalive,
    KeepaliveStatus,
    LinkError,
    Request,
    Response,
    Status,
    decode_message,
    encode_message,
)

KEEPALIVE_INTERVAL = 0.1
# Roughly what a secure element takes (ECDSA sign, key generation, PIN check with its retry write).
HARDWARE_TIMING: Mapping[Command, float] = {
    Command.SIGN_PAYMENT: 0.040,
    Command.SIGN_SESSION: 0.040,
    Command.ATTEST: 0.040,
    Command.GENERATE_KEY: 0.080,
    Command.SET_PIN: 0.020,
    Command.CHANGE_PIN: 0.020,
    Command.GET_PIN_TOKEN: 0.020,
    Command.UNBLOCK_PIN: 0.020,
    Command.CARD_TRANSMIT: 0.030,  # an APDU to a contact card, at its default clock
}
TIMING_PROFILES: Mapping[str, Mapping[Command, float]] = {"none": {}, "hardware": HARDWARE_TIMING}
_HEAD = struct.Struct(">BI")
_ID = struct.Struct(">I")
_COMMAND_CODES = frozenset(int(c) for c in Command)
_OUTBOX = 8  # a host that stops reading loses the oldest frames, the dongle never runs out of RAM


@dataclass(slots=True)
class _Pending:
    seq: int
    request: Request
    ready_at: float


@dataclass(frozen=True, slots=True)
class _Answered:
    seq: int
    request_id: int
    frame: bytes


class Link:
    def __init__(
        self,
        firmware: Firmware,
        slot: CardSlot,
        clock: Clock,
        timing: Mapping[Command, float] | None = None,
    ) -> None:
        self.firmware = firmware
        self.slot = slot
        self._clock = clock
        self._timing = timing or {}
        self._pending: _Pending | None = None
        self._last: _Answered | None = None
        self._keepalive_at: float | None = None
        self._outbox: deque[bytes] = deque(maxlen=_OUTBOX)

    def receive(self, transfer: bytes) -> None:
        """Handle one complete OUT transfer, which should carry exactly one frame."""
        if len(transfer) > MAX_FRAME:
            self._link_error(Status.INVALID_LENGTH)
            return
        items = FrameDecoder().feed(transfer)
        frames = [item for item in items if isinstance(item, Frame)]
        if not frames:
            version = any(isinstance(item, FrameVersionError) for item in items)
            self._link_error(Status.UNSUPPORTED_VERSION if version else Status.INVALID_LENGTH)
            return
        for frame in frames:
            if frame.type is FrameType.REQUEST:
                self._on_request(frame)
            elif frame.type is FrameType.CANCEL:
                self._on_cancel(frame)
            # Frames only a dongle sends are ignored: the host's own echo is not worth an answer.

    def transmit(self) -> bytes | None:
        """The next frame for the host's IN read, or None when there is nothing to send yet."""
        self._advance()
        if self._outbox:
            return self._outbox.popleft()
        pending = self._pending
        if pending is None:
            return None
        now = self._clock()
        if self._keepalive_at is not None and now - self._keepalive_at < KEEPALIVE_INTERVAL:
            return None
        self._keepalive_at = now
        keepalive = Keepalive(pending.request.request_id, KeepaliveStatus.PROCESSING)
        return encode_message(keepalive, pending.seq)

    def next_event(self) -> float | None:
        """Clock time at which ``transmit`` may have something new (None: only after input)."""
        if self._outbox or self._pending is None:
            return None
        if self._keepalive_at is None:
            return self._pending.ready_at
        return min(self._pending.ready_at, self._keepalive_at + KEEPALIVE_INTERVAL)

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def _link_error(self, status: Status) -> None:
        self._outbox.append(encode_message(LinkError(status), 0))

    def _answer(self, seq: int, response: Response) -> None:
        frame = encode_message(response, seq)
        self._last = _Answered(seq, response.request_id, frame)
        self._outbox.append(frame)

    def _on_request(self, frame: Frame) -> None:
        payload = frame.payload
        if len(payload) < _HEAD.size:
            self._link_error(Status.INVALID_LENGTH)
            return
        code, request_id = _HEAD.unpack_from(payload)
        pending = self._pending
        if pending is not None:
            if (frame.seq, request_id) != (pending.seq, pending.request.request_id):
                busy = Response(Status.BUSY, request_id, {"message": "still working; retry"})
                self._outbox.append(encode_message(busy, frame.seq))
            return  # a retransmission of the running request: its answer is coming
        last = self._last
        if last is not None and frame.seq == last.seq:
            if request_id == last.request_id:
                self._outbox.append(last.frame)
            else:
                self._answer(
                    frame.seq,
                    Response(
                        Status.INVALID_SEQ,
                        request_id,
                        {"message": "sequence number reused for another request"},
                    ),
                )
            return
        try:
            request = decode_message(frame)
        except MessageError as exc:
            status = Status.INVALID_PARAMETER
            if code not in _COMMAND_CODES:
                status = Status.INVALID_COMMAND
            self._answer(frame.seq, Response(status, request_id, {"message": str(exc)}))
            return
        assert isinstance(request, Request)
        cost = self._timing.get(request.command, 0.0)
        self._pending = _Pending(frame.seq, request, self._clock() + cost)
        self._keepalive_at = None
        self._advance()

    def _on_cancel(self, frame: Frame) -> None:
        pending = self._pending
        if len(frame.payload) != _ID.size or pending is None:
            return
        (request_id,) = _ID.unpack(frame.payload)
        if request_id != pending.request.request_id:
            return
        self._pending = None
        self._answer(
            pending.seq,
            Response(Status.CANCELLED, request_id, {"message": "cancelled; nothing changed"}),
        )

    def _advance(self) -> None:
        pending = self._pending
        if pending is None or self._clock() < pending.ready_at:
            return
        self._pending = None
        request = pending.request
        # The card reader is the USB device's, beside the secure element: no PIN, any state.
        handler = self.slot.handle if request.command in CARD_COMMANDS else self.firmware.handle
        self._answer(pending.seq, handler(request))
