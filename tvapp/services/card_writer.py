"""The box's side of a card purchase: write the paid purchase onto the 购电卡 in the dongle's slot.

    read the card -> GET CHALLENGE -> POST /cards/session (the gateway, acting for the utility's
    vending system, answers with a write-card block for this challenge) -> the block recorded
    -> the block run on the card -> the card read back -> recorded as written -> POST
    /cards/confirm -> recorded as done

Each outcome is in the fulfilment journal before the next step that cannot be undone: the
block before it touches the card, the read-back before the gateway is told. A card pulled out at
any point leaves a purchase that the next 补写卡 finishes: the card's authenticated count, not
this box's memory, says where it stands (count N: write again; N+1 with the purchase's tag:
only confirm), so the meter is credited once. The same flow works from any box (the card names
the purchase): that is 补写卡 at a neighbour's or a shop's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dongle.card import card_challenge, read_card, run_block
from dongle.client import DaemonClient
from dongle.errors import CardAbsent, CardChanged
from protocol.card import CardError, CardRead, PurchaseRecord, purchase_tag
from tvapp.fulfilments import FulfilmentJournal
from tvapp.services.errors import ServiceError
from tvapp.services.prepaid import PrepaidApi
from tvapp.services.purchases import Purchases
from tvapp.services.session import DeviceSession

log = logging.getLogger("tvapp.card")

STEP_READING = "reading"
STEP_ASKING = "asking"
STEP_WRITING = "writing"
STEP_CHECKING = "checking"
STEP_CONFIRMING = "confirming"
STEPS = (STEP_READING, STEP_ASKING, STEP_WRITING, STEP_CHECKING, STEP_CONFIRMING)


class NoCard(ServiceError):
    """No purchase card in the dongle's slot."""

    def __init__(self) -> None:
        super().__init__("insert the purchase card into the payment dongle's card slot")


class CardWriteIncomplete(ServiceError):
    """The card was taken out (or swapped) before the purchase was on it: 补写卡 finishes it."""

    def __init__(self, purchase_id: str) -> None:
        super().__init__(
            "the card was taken out before the purchase was written; put it back and choose "
            "补写卡 (write the card again): it is written once"
        )
        self.purchase_id = purchase_id


class CardUnreadable(ServiceError):
    """The card answered something a purchase card does not: not a purchase card, or broken."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"the card in the slot could not be read as a purchase card ({detail})")


class NothingToWrite(ServiceError):
    """The gateway has nothing to write on this card; ``reason`` is its words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CardWriter:
    def __init__(
        self,
        session: DeviceSession,
        client: DaemonClient,
        purchases: Purchases,
        fulfilments: FulfilmentJournal,
    ) -> None:
        self.session = session
        self.client = client
        self.purchases = purchases
        self.fulfilments = fulfilments

    def read(self) -> CardRead:
        """The card in the slot now, for a purchase (the gateway checks it before the PIN)."""
        return self._read()[0]

    def _read(self) -> tuple[CardRead, int]:
        with _card_faults(NoCard):
            slot = self.client.card_status()
            if not slot.present:
                raise NoCard()
            return read_card(self.client, slot.slot_events), slot.slot_events

    def write(self, on_step: Callable[[str], None]) -> str:
        """Write whatever paid purchase the card in the slot is due; its purchase id."""
        on_step(STEP_READING)
        card, events = self._read()
        with _card_faults(NoCard):
            challenge = card_challenge(self.client, events)
        on_step(STEP_ASKING)
        answer = self.session.call(lambda gw: PrepaidApi.card_session(gw, card, challenge))
        if answer.action == "none" or answer.purchase_id is None:
            raise NothingToWrite(answer.reason)
        purchase_id = answer.purchase_id
        self.purchases.remember(purchase_id)  # journaled here even if bought on another box
        if answer.action == "write":
            assert answer.count is not None
            self.fulfilments.record_block(purchase_id, answer.count, answer.apdus)
            log.info("event=card_block purchase_id=%s count=%s", purchase_id, answer.count)
            on_step(STEP_WRITING)
            with _card_faults(lambda: CardWriteIncomplete(purchase_id)):
                run_block(self.client, answer.apdus, events)
                on_step(STEP_CHECKING)
                card = read_card(self.client, events)
        record = PurchaseRecord.parse(card.purchase)
        if record.tag != purchase_tag(purchase_id) or (
            answer.count is not None and record.count != answer.count
        ):
            raise CardWriteIncomplete(purchase_id)
        self.fulfilments.record_written(purchase_id, record.count)
        on_step(STEP_CONFIRMING)
        confirmed = self.session.call(lambda gw: PrepaidApi.card_confirm(gw, card))
        if confirmed != purchase_id:
            raise NothingToWrite("the card shows another purchase than the one written")
        self.fulfilments.record_done(purchase_id, f"card count {record.count}")
        log.info("event=card_written purchase_id=%s count=%s", purchase_id, record.count)
        return purchase_id


@contextmanager
def _card_faults(gone: Callable[[], ServiceError]) -> Iterator[None]:
    """The slot's and the card's faults as what the household can do: the card gone (``gone``:
    insert it, or finish with 补写卡), or a card that is not a readable purchase card."""
    try:
        yield
    except (CardAbsent, CardChanged):
        raise gone() from None
    except CardError as exc:
        raise CardUnreadable(str(exc)) from None
