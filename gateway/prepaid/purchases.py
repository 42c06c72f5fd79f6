"""Prepaid purchases: a one-off purchase bill and its payment (gateway.payments, unchanged), the
quote the household agreed to, and the purchase's fulfilment as the household sees it.

Creating a purchase replaces this meter's earlier purchases still awaiting payment (their bills
become ``void``: a signature for one sent later is refused with 410 and takes no money) and is
refused while one is pending fulfilment. Concurrency: the meter row is locked first, then the
earlier purchases' bills, then the purchases — the order authorize takes bill then purchase — so
a purchase created while an earlier one is being authorized either sees it paid (409) or voids
it before authorize reads its bill (410 there).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.clock import iso
from gateway.db.models import Bill, Payment, PrepaidMeter, Purchase
from gateway.errors import Conflict, NotFound, Unprocessable
from gateway.ids import new_id
from gateway.payments import create_payment
from gateway.prepaid import meters, tariff, vending
from gateway.prepaid.rules import check_amount, load_rules
from gateway.prepaid.tokens import issue_token
from gateway.views import payment_status
from protocol import card as cardfmt
from protocol.sts import TokenError, units_from_wh

OPEN = ("awaiting_payment", "pending")


def _pending_conflict(purchase: Purchase) -> Conflict:
    return Conflict(
        f"Purchase {purchase.id} for this meter is paid and not yet on the meter: finish it "
        "(write the card, or enter the token) or wait until it is reversed, then buy again.",
        code="purchase_pending",
    )


def _open_purchases(session: Session, meter_id: str) -> list[Purchase]:
    """This meter's purchases not yet fulfilled or replaced, their bills then rows locked."""
    bill_ids = list(
        session.scalars(
            select(Purchase.bill_id).where(
                Purchase.meter_id == meter_id, Purchase.fulfilment.in_(OPEN)
            )
        )
    )
    if bill_ids:
        session.scalars(select(Bill.id).where(Bill.id.in_(bill_ids)).with_for_update()).all()
    return list(
        session.scalars(
            select(Purchase)
            .where(Purchase.meter_id == meter_id, Purchase.fulfilment.in_(OPEN))
            .with_for_update()
        )
    )


def _replace_open(session: Session, meter_id: str) -> None:
    """Void the purchases still awaiting payment; refuse while one is paid or being paid."""
    for purchase in _open_purchases(session, meter_id):
        bill = session.get(Bill, purchase.bill_id)
        assert bill is not None  # foreign key
        # A bill already 'paid' with the purchase still awaiting: a bank debit is under way.
        if purchase.fulfilment == "pending" or bill.status == "paid":
            raise _pending_conflict(purchase)
        purchase.fulfilment, bill.status = "void", "void"


def quote_for(
    session: Session, row: meters.MeterRow, amount_fen: int, currency: str, now: int
) -> tariff.Quote:
    """The rules' refusals, then the energy the amount buys now (before the PIN)."""
    rules = load_rules(session, row.biller.code)
    known = None if row.meter.kind == "token" else row.meter.last_balance_fen
    check_amount(rules, amount_fen, currency, known)
    offer = tariff.quote(rules.tariff, meters.year_usage_wh(session, row.meter, now), amount_fen)
    if row.meter.kind == "token":
        try:
            units_from_wh(offer.energy_wh)
        except TokenError:
            raise Unprocessable(
                "This amount buys more energy than one token can carry; buy a smaller amount.",
                code="amount_above_maximum",
            ) from None
    return offer


def create_purchase(
    session: Session,
    household_id: int,
    gateway_id: str,
    ttl: int,
    meter_id: str,
    amount_fen: int,
    currency: str,
    funding_source: str | None,
    card: cardfmt.CardRead | None,
    vending_secret: bytes,
    now: int,
) -> dict[str, Any]:
    """The purchase bill, its payment (as POST /payments answers it) and the purchase."""
    row = meters.find_meter(session, household_id, meter_id, lock=True)
    return purchase_on(
        session,
        row,
        household_id,
        gateway_id,
        ttl,
        amount_fen,
        currency,
        funding_source,
        card,
        vending_secret,
        now,
    )


def purchase_on(
    session: Session,
    row: meters.MeterRow,
    payer_id: int,
    gateway_id: str,
    ttl: int,
    amount_fen: int,
    currency: str,
    funding_source: str | None,
    card: cardfmt.CardRead | None,
    vending_secret: bytes,
    now: int,
) -> dict[str, Any]:
    """A purchase on ``row``'s meter (its row locked by the caller) paid by household
    ``payer_id``: the meter's own household, or a shop selling to any account (gateway.shops).
    The purchase is the payer's: its lists and GET /purchases/{id} show it to the payer."""
    offer = quote_for(session, row, amount_fen, currency, now)
    card_count = None
    if row.meter.kind == "card":
        if card is None:
            raise Unprocessable(
                "A card meter's purchase needs the purchase card: insert it in the box and "
                "try again.",
                code="card_required",
            )
        vending.check_card_ready(session, row.meter, card, vending_secret)
        card_count = cardfmt.PurchaseRecord.parse(card.purchase).count + 1
    _replace_open(session, row.meter.id)
    purchase_id = new_id("pur")
    bill = Bill(
        id=new_id("bill"),
        account_id=row.account.id,
        bill_ref="PUR-" + purchase_id.removeprefix("pur_"),
        period=datetime.fromtimestamp(now, UTC).strftime("%Y-%m"),
        amount_fen=amount_fen,
        currency=currency,
        due_date=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d"),
        issued_at=now,
        status="unpaid",
        kind="purchase",
    )
    session.add(bill)
    session.flush()
    answer = create_payment(
        session,
        payer_id,
        gateway_id,
        ttl,
        bill.id,
        amount_fen,
        currency,
        funding_source,
        any_account=row.account.household_id != payer_id,
    )
    purchase = Purchase(
        id=purchase_id,
        meter_id=row.meter.id,
        household_id=payer_id,
        payment_id=answer["payment_id"],
        bill_id=bill.id,
        amount_fen=amount_fen,
        currency=currency,
        energy_wh=offer.energy_wh,
        quote=json.dumps(offer.to_json(currency)),
        fulfilment="awaiting_payment",
        card_count=card_count,
        created_at=now,
    )
    session.add(purchase)
    session.flush()
    payment = session.get(Payment, purchase.payment_id)
    assert payment is not None  # just created
    return {**answer, "purchase": purchase_view(purchase, payment, bill, row.meter)}


def purchase_view(
    purchase: Purchase, payment: Payment, bill: Bill, meter: PrepaidMeter
) -> dict[str, Any]:
    return {
        "purchase_id": purchase.id,
        "payment_id": purchase.payment_id,
        "meter_id": purchase.meter_id,
        "kind": meter.kind,
        "amount_fen": purchase.amount_fen,
        "currency": purchase.currency,
        "energy_wh": purchase.energy_wh,
        "tiers": json.loads(purchase.quote)["tiers"],
        "payment_status": payment_status(payment, bill),
        "fulfilment": purchase.fulfilment,
        "token": purchase.token,
        "card_count": purchase.card_count,
        "fulfil_by": iso(purchase.fulfil_by),
        "created_at": iso(purchase.created_at),
    }


def _rows(session: Session, household_id: int, *conditions: Any, limit: int) -> list[Any]:
    return list(
        session.execute(
            select(Purchase, Payment, Bill, PrepaidMeter)
            .join(Payment, Purchase.payment_id == Payment.id)
            .join(Bill, Purchase.bill_id == Bill.id)
            .join(PrepaidMeter, Purchase.meter_id == PrepaidMeter.id)
            .where(Purchase.household_id == household_id, *conditions)
            .order_by(Purchase.created_at.desc(), Purchase.id.desc())
            .limit(limit)
        )
    )


def list_purchases(session: Session, household_id: int, limit: int) -> list[dict[str, Any]]:
    """The household's purchases, newest first (replaced ones are not purchases it made)."""
    rows = _rows(session, household_id, Purchase.fulfilment != "void", limit=limit)
    return [purchase_view(*row) for row in rows]


def get_purchase(
    session: Session, household_id: int, purchase_id: str, vending_secret: bytes, now: int
) -> dict[str, Any]:
    """One purchase; a paid token purchase gets its token on the first call (the same digits on
    every later one)."""
    found = _rows(session, household_id, Purchase.id == purchase_id, limit=1)
    if not found:
        raise NotFound("No such purchase for this household.", code="purchase_not_found")
    purchase, payment, bill, meter = found[0]
    if meter.kind == "token" and purchase.fulfilment == "pending" and purchase.token is None:
        # Locked in the order a new purchase takes them (meter, then purchase), and looked at
        # again: another request may have issued the token meanwhile.
        session.refresh(meter, with_for_update=True)
        session.refresh(purchase, with_for_update=True)
        if purchase.fulfilment == "pending" and purchase.token is None:
            issue_token(session, purchase, meter, vending_secret, now)
    return purchase_view(purchase, payment, bill, meter)
