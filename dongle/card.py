"""The box's side of the purchase card in the dongle's card slot (docs/protocol.md §4.5).

Every APDU names the slot event the card was first seen at, so a card swapped or re-inserted
between two steps is refused by the dongle (``CardChanged``) before anything reaches it; a
caller reads the slot once and passes its ``slot_events`` through the whole exchange:

    slot = client.card_status()
    read = read_card(client, slot.slot_events)
    challenge = card_challenge(client, slot.slot_events)
    ...ask the gateway for the block...
    run_block(client, apdus, slot.slot_events)

The card's answers are outside input: each is checked for its status word and its length
(``protocol.card.CardError``). The daemon and the dongle pass the bytes through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dongle.errors import CardAbsent
from protocol.card import (
    CHALLENGE_SIZE,
    FILE_SIZE,
    SFI_ISSUER,
    SFI_PURCHASE,
    SFI_WRITEBACK,
    CardError,
    CardRead,
    check_response,
    get_challenge,
    read_binary,
)
from protocol.messages import MAX_APDU, MIN_APDU, Status

if TYPE_CHECKING:
    from dongle.client import DaemonClient


@dataclass(frozen=True, slots=True)
class CardSlot:
    """CARD_STATUS: whether a card is in, its ATR, and the slot's event count."""

    present: bool
    atr: bytes
    slot_events: int

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> CardSlot:
        present = result.get("present")
        events = result.get("slot_events")
        atr = result.get("atr", b"")
        if (
            not isinstance(present, bool)
            or not isinstance(events, int)
            or isinstance(events, bool)
            or events < 0
            or not isinstance(atr, bytes)
        ):
            raise CardError("the dongle's card status is malformed: update tvpay-dongled")
        return cls(present, atr, events)


def check_apdu(apdu: object) -> bytes:
    """``apdu`` if it is a command APDU the slot takes (4..261 bytes); CardError otherwise."""
    if not isinstance(apdu, bytes) or not MIN_APDU <= len(apdu) <= MAX_APDU:
        raise CardError(f"a command APDU is {MIN_APDU}..{MAX_APDU} bytes")
    return apdu


def _data(client: DaemonClient, apdu: bytes, slot_events: int, size: int) -> bytes:
    data = check_response(client.card_transmit(apdu, slot_events))
    if len(data) != size:
        raise CardError(f"the card answered {len(data)} bytes where {size} were asked for")
    return data


def read_card(client: DaemonClient, slot_events: int | None = None) -> CardRead:
    """The card's three files. Without ``slot_events`` the card in the slot now is read."""
    if slot_events is None:
        slot = client.card_status()
        if not slot.present:
            raise CardAbsent(Status.CARD_ABSENT)
        slot_events = slot.slot_events
    issuer, purchase, writeback = (
        _data(client, read_binary(sfi), slot_events, FILE_SIZE)
        for sfi in (SFI_ISSUER, SFI_PURCHASE, SFI_WRITEBACK)
    )
    return CardRead(issuer, purchase, writeback)


def card_challenge(client: DaemonClient, slot_events: int) -> bytes:
    """GET CHALLENGE: opens the card's secure-messaging session for one write-card block."""
    return _data(client, get_challenge(), slot_events, CHALLENGE_SIZE)


def run_block(client: DaemonClient, apdus: Sequence[bytes], slot_events: int) -> None:
    """Send a write-card block, in order, stopping at the first APDU the card refuses.

    The block comes from the gateway: every APDU is checked before the first is sent, so a
    malformed block writes nothing. A card removed part-way raises ``CardAbsent`` and may hold
    any prefix of the block; read it again to see which (the block is built so that every prefix
    is harmless)."""
    block = [check_apdu(apdu) for apdu in apdus]
    for apdu in block:
        check_response(client.card_transmit(apdu, slot_events))
