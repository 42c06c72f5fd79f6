"""Card sessions and confirmations: the vending side of a card meter's purchase (docs/prepaid.md).

The box reads the card's three files and asks ``card_session`` what to do: write purchase N+1
(a write-card block MAC'ed for the card's current challenge), confirm it (the card already shows
it), or nothing (with a reason for the household). After writing it reads the card back and
calls ``confirm_card``; the purchase is then ``done`` and the utility is told of the sale.

The card, not the caller, names the purchase: any device session may run either call, so a
card can be written (补写卡) from another household's box or a shop's. Every block handed out is
logged in ``card_issues`` before it leaves, which is what lets the reversal sweep tell a card
that may hold a purchase from one that cannot (gateway.prepaid.sweep).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import CardIssue, Purchase
from gateway.db.models import CardRead as CardReadRow
from gateway.errors import Conflict
from gateway.ledger.amounts import show
from gateway.prepaid.vending import AuthenticCard, identify
from gateway.writeoff import queue_fulfilled
from protocol import card as cardfmt


def _log_read(session: Session, seen: AuthenticCard, dongle_id: str, now: int) -> None:
    """Keep what the box saw; an authentic full write-back is the meter's latest balance."""
    wb = seen.writeback
    session.add(
        CardReadRow(
            meter_id=seen.meter.id,
            count=seen.record.count,
            writeback=wb.to_bytes().hex() if wb is not None else None,
            read_at=now,
            dongle_id=dongle_id,
        )
    )
    meter = seen.meter
    # A card shown late (read at a shop days ago) must not replace a newer report.
    if wb is not None and (meter.last_balance_at is None or wb.at >= meter.last_balance_at):
        meter.last_balance_fen, meter.last_balance_at = wb.remaining_fen, wb.at


def _pending(session: Session, meter_id: str) -> Purchase | None:
    return session.scalar(
        select(Purchase)
        .where(Purchase.meter_id == meter_id, Purchase.fulfilment == "pending")
        .with_for_update()
    )


def _shows(purchase: Purchase, record: cardfmt.PurchaseRecord) -> bool:
    return record.count == purchase.card_count and record.tag == cardfmt.purchase_tag(purchase.id)


def _nothing_pending(session: Session, seen: AuthenticCard) -> str:
    last = session.scalar(
        select(Purchase)
        .where(Purchase.meter_id == seen.meter.id, Purchase.card_count == seen.record.count + 1)
        .order_by(Purchase.created_at.desc())
        .limit(1)
    )
    if last is not None and last.fulfilment == "reversed":
        return (
            f"Purchase {last.id} of {show(last.amount_fen, last.currency)} was not written to "
            "this card in time, so it was reversed and the money refunded: buy again."
        )
    return f"No purchase is waiting for this card (it shows purchase {seen.record.count})."


def _mismatch(purchase: Purchase, count: int) -> str:
    wanted = purchase.card_count
    if count > wanted:
        return (
            f"This card shows purchase {count}, later than the waiting purchase {wanted}: take "
            "the card to the utility's service counter."
        )
    if count == wanted:
        return (
            f"This card shows another purchase numbered {count}: take the card to the "
            "utility's service counter."
        )
    return (
        f"This card shows purchase {count}, but purchase {wanted - 1} must be on it before "
        f"purchase {wanted} can be written: use the meter's latest card."
    )


def _write(
    session: Session,
    seen: AuthenticCard,
    purchase: Purchase,
    challenge: bytes,
    dongle_id: str,
    now: int,
) -> dict[str, Any]:
    assert purchase.card_count is not None  # a card purchase always knows its count
    record = cardfmt.PurchaseRecord(
        count=purchase.card_count,
        amount_fen=purchase.amount_fen,
        energy_wh=purchase.energy_wh,
        tag=cardfmt.purchase_tag(purchase.id),
        issued_at=now,
    )
    apdus = cardfmt.write_card_block(
        card_key=seen.card_key, challenge=challenge, issuer=seen.issuer, record=record
    )
    session.add(
        CardIssue(
            purchase_id=purchase.id,
            challenge=challenge,
            count=purchase.card_count,
            issued_at=now,
            box=dongle_id,
        )
    )
    return {
        "action": "write",
        "purchase_id": purchase.id,
        "count": purchase.card_count,
        "apdus": [apdu.hex() for apdu in apdus],
    }


def card_session(
    session: Session,
    secret: bytes,
    card: cardfmt.CardRead,
    challenge: bytes,
    dongle_id: str,
    now: int,
) -> dict[str, Any]:
    """What the box should do with this card now: ``write``, ``confirm`` or ``none``."""
    seen = identify(session, card, secret)
    _log_read(session, seen, dongle_id, now)
    purchase = _pending(session, seen.meter.id)
    if purchase is None:
        return {"action": "none", "reason": _nothing_pending(session, seen)}
    assert purchase.card_count is not None  # a card purchase always knows its count
    if _shows(purchase, seen.record):
        return {"action": "confirm", "purchase_id": purchase.id}
    if seen.record.count == purchase.card_count - 1:
        return _write(session, seen, purchase, challenge, dongle_id, now)
    return {"action": "none", "reason": _mismatch(purchase, seen.record.count)}


def confirm_card(
    session: Session, secret: bytes, card: cardfmt.CardRead, dongle_id: str, now: int
) -> dict[str, Any]:
    """The card read back after writing shows the purchase: it is ``done`` (once; a second
    confirmation, from this box or another, answers the same and changes nothing)."""
    seen = identify(session, card, secret)  # locks the meter: confirmations take turns
    candidates = session.scalars(
        select(Purchase).where(
            Purchase.meter_id == seen.meter.id, Purchase.card_count == seen.record.count
        )
    ).all()
    purchase = next((p for p in candidates if _shows(p, seen.record)), None)
    if purchase is not None and purchase.fulfilment == "reversed":
        # The sweep reverses only purchases no block could have reached: staff must look.
        raise Conflict(
            f"Purchase {purchase.id} was reversed and refunded, yet this card shows it: take "
            "the card to the utility's service counter.",
            code="purchase_reversed",
        )
    if purchase is None or purchase.fulfilment not in ("pending", "done"):
        raise Conflict(
            f"This card does not show a purchase waiting here (it shows purchase "
            f"{seen.record.count}): start a new card session to write it.",
            code="card_mismatch",
        )
    _log_read(session, seen, dongle_id, now)
    if purchase.fulfilment == "pending":
        purchase.fulfilment, purchase.fulfilled_at, purchase.needs_card = "done", now, False
        seen.meter.card_count = seen.record.count
        queue_fulfilled(session, purchase, now)
    return {"purchase_id": purchase.id, "fulfilment": "done"}
