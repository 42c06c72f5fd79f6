"""The card slot of the dongle's USB device: the reader behind CARD_STATUS and CARD_TRANSMIT
(docs/protocol.md §4.5).

The slot belongs to the USB device, not to the secure element: its commands need no PIN and run
in every lifecycle state, and nothing of the card reaches the dongle's store. ``slot_events``
counts insertions, removals and power-ups with a card in, each of which ends the card's
secure-messaging session; a host names the slot event it read the card at, and a command for
another card (or the same card re-inserted) is refused with CARD_CHANGED before anything reaches
the card.

Faults model a household pulling the card out: before the k-th APDU reaches the card, while it
answers the k-th (it ran, the answer is lost), or just after it answered.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.firmware.dongle import Refusal, blob_param, uint_param
from protocol.messages import MAX_APDU, MIN_APDU, Command, Request, Response, Status

CARD_COMMANDS = frozenset({Command.CARD_STATUS, Command.CARD_TRANSMIT})
MAX_RAPDU = 258  # 256 data bytes and the status word


class Card(Protocol):
    """What the slot needs of a card (``emulator.card.VirtualPurchaseCard`` is one)."""

    def transmit(self, apdu: bytes) -> bytes: ...

    def reset(self) -> bytes: ...


class SlotError(RuntimeError):
    """A card cannot be put in or taken out as asked; the message says why."""


class RemovalMoment(enum.StrEnum):
    BEFORE = "before"  # the k-th APDU never reaches the card
    DURING = "during"  # the card runs the k-th APDU, its answer is lost
    AFTER = "after"  # the k-th answer reaches the host, then the card is out


@dataclass(frozen=True, slots=True)
class CardRemoval:
    """Pull the card out at the ``apdu``-th APDU (counted from when the fault is armed)."""

    moment: RemovalMoment
    apdu: int

    def __post_init__(self) -> None:
        if self.apdu < 1:
            raise SlotError("the APDU number of a card removal counts from 1")


@dataclass(frozen=True, slots=True)
class SlotState:
    present: bool
    atr: bytes
    slot_events: int
    removal: CardRemoval | None


class CardSlot:
    """One reader slot. Thread-safe: the cable's control thread inserts and removes cards while
    the USB side runs commands."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._card: Card | None = None
        self._atr = b""
        self._events = 0
        self._removal: CardRemoval | None = None
        self._sent = 0  # APDUs that reached the slot since the removal fault was armed

    @property
    def card(self) -> Card | None:
        return self._card

    def state(self) -> SlotState:
        with self._lock:
            return SlotState(self._card is not None, self._atr, self._events, self._removal)

    def insert(self, card: Card) -> bytes:
        """Put ``card`` in the slot; its ATR."""
        with self._lock:
            if self._card is not None:
                raise SlotError("the slot already holds a card: remove it first")
            self._atr = card.reset()
            self._card = card
            self._events += 1
            return self._atr

    def remove(self) -> Card | None:
        """Take the card out; the card that was in, or None if the slot was empty."""
        with self._lock:
            return self._pull()

    def power_on(self) -> None:
        """The dongle was plugged in: a card in the slot is powered and reset, its session gone."""
        with self._lock:
            if self._card is not None:
                self._atr = self._card.reset()
                self._events += 1

    def arm_removal(self, removal: CardRemoval | None) -> None:
        """Pull the card out at an APDU to come (None disarms)."""
        with self._lock:
            self._removal = removal
            self._sent = 0

    def _pull(self) -> Card | None:
        card, self._card, self._atr = self._card, None, b""
        if card is not None:
            self._events += 1
        return card

    # -- the two commands ------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            if request.command is Command.CARD_STATUS:
                body = self._status()
            else:
                body = self._transmit(request.params)
        except Refusal as refusal:
            return Response(
                refusal.status, request.request_id, {"message": str(refusal), **refusal.extra}
            )
        return Response(Status.OK, request.request_id, body)

    def _status(self) -> dict[str, Any]:
        with self._lock:
            body: dict[str, Any] = {"present": self._card is not None, "slot_events": self._events}
            if self._card is not None:
                body["atr"] = self._atr
            return body

    def _transmit(self, params: dict[str, Any]) -> dict[str, Any]:
        apdu = blob_param(params, "apdu", MIN_APDU, MAX_APDU)
        seen = uint_param(params, "slot_events")
        with self._lock:
            card = self._card
            if card is None:
                raise Refusal(
                    Status.CARD_ABSENT,
                    "no card in the slot",
                    slot_events=self._events,
                )
            if seen != self._events:
                raise Refusal(
                    Status.CARD_CHANGED,
                    f"the card was taken out or replaced since slot event {seen}",
                    slot_events=self._events,
                )
            moment = self._removal_now()
            if moment is RemovalMoment.BEFORE:
                self._pull()
                raise Refusal(
                    Status.CARD_ABSENT,
                    "the card was taken out before the command reached it",
                    slot_events=self._events,
                )
            rapdu = card.transmit(apdu)
            if moment is RemovalMoment.DURING:
                self._pull()
                raise Refusal(
                    Status.CARD_ABSENT,
                    "the card was taken out while it answered: its answer is lost and the "
                    "command may have run",
                    slot_events=self._events,
                )
            if moment is RemovalMoment.AFTER:
                self._pull()
            if not 2 <= len(rapdu) <= MAX_RAPDU:
                # A card is outside input too: an answer without a status word is not relayed.
                raise Refusal(
                    Status.OTHER,
                    f"the card answered {len(rapdu)} bytes, not a response APDU: "
                    "take the card out and insert it again",
                )
            return {"rapdu": rapdu}

    def _removal_now(self) -> RemovalMoment | None:
        """The removal that fires on this APDU, if any (it fires once)."""
        removal = self._removal
        if removal is None:
            return None
        self._sent += 1
        if self._sent != removal.apdu:
            return None
        self._removal = None
        return removal.moment
