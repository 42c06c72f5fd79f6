"""A shop's sale: the customer's prepaid meter found by its 户号 at a biller or by the customer's
card, then the purchase made exactly as a household's (gateway.prepaid.purchases), paid from the
shop's float, with the commission fixed on the payment (posted with it at authorize).

The customer's account need not be bound to any household; the purchase is the shop's (its box
fulfils it: writes the card, shows the token), and the meter's rules and its one pending purchase
apply as for any purchase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import Biller, Payment, PrepaidMeter, UtilityAccount
from gateway.errors import Conflict, NotFound, Unprocessable
from gateway.funding.sources import wallet_source
from gateway.ledger.amounts import show
from gateway.masking import mask_account
from gateway.prepaid import vending
from gateway.prepaid.meters import MeterRow
from gateway.prepaid.purchases import purchase_on
from gateway.shop.shops import require_shop
from protocol import card as cardfmt

BASIS = 10_000  # basis points in a whole


@dataclass(frozen=True, slots=True)
class Customer:
    """Who the shop sells to: a 户号 at a biller, or the customer's purchase card."""

    account_no: str | None = None
    biller: str | None = None
    card: cardfmt.CardRead | None = None


def commission_of(amount_fen: int, commission_bp: int | None) -> int:
    """The shop's commission on a sale, rounded down to the fen."""
    return amount_fen * (commission_bp or 0) // BASIS


def _row(session: Session, meter_id: str) -> MeterRow:
    found = session.execute(
        select(PrepaidMeter, UtilityAccount, Biller)
        .join(UtilityAccount, PrepaidMeter.account_id == UtilityAccount.id)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .where(PrepaidMeter.id == meter_id)
    ).one()
    return MeterRow(*found)


def find_customer_meter(session: Session, customer: Customer, vending_secret: bytes) -> MeterRow:
    """The customer's meter, its row locked (one purchase at a time per meter)."""
    if customer.card is not None:
        if customer.account_no is not None or customer.biller is not None:
            raise Unprocessable(
                "Send the customer's card or the 户号 with its biller, not both.",
                code="customer_invalid",
            )
        # The card's verified issuer file names the meter (and locks it).
        return _row(session, vending.identify(session, customer.card, vending_secret).meter.id)
    if customer.account_no is None or customer.biller is None:
        raise Unprocessable(
            "Name the customer: the 户号 and its biller, or the customer's purchase card.",
            code="customer_invalid",
        )
    meter_id = session.scalar(
        select(PrepaidMeter.id)
        .join(UtilityAccount, PrepaidMeter.account_id == UtilityAccount.id)
        .where(
            UtilityAccount.account_no == customer.account_no,
            UtilityAccount.biller_code == customer.biller,
        )
    )
    if meter_id is None:
        raise NotFound(
            f"No prepaid meter on account {mask_account(customer.account_no)} at "
            f"{customer.biller}: check the 户号 on the customer's bill or card, and the utility.",
            code="meter_not_found",
        )
    meter = session.get(PrepaidMeter, meter_id, with_for_update=True)
    assert meter is not None  # just selected; meters are never deleted
    return _row(session, meter.id)


def _float_short(error: Conflict) -> Conflict:
    details = error.details or {}
    held, needed = int(details["balance_fen"]), int(details["needed_fen"])
    currency = str(details["currency"])
    return Conflict(
        f"The shop's float (备付金) holds {show(held, currency)}, this sale needs "
        f"{show(needed, currency)}: top up the float with the telecom, or sell a smaller amount.",
        code="insufficient_funds",
        details=details,
    )


def sell(
    session: Session,
    shop_id: int,
    gateway_id: str,
    ttl: int,
    customer: Customer,
    amount_fen: int,
    currency: str,
    vending_secret: bytes,
    now: int,
) -> dict[str, Any]:
    """The sale as POST /purchases answers a purchase (payment_id, sign_fields, display,
    purchase); refused before the PIN when the float is short, the rules refuse the amount or
    the meter has a purchase pending."""
    shop = require_shop(session, shop_id)
    row = find_customer_meter(session, customer, vending_secret)
    float_source = wallet_source(session, shop.id).id
    try:
        answer = purchase_on(
            session,
            row,
            shop.id,
            gateway_id,
            ttl,
            amount_fen,
            currency,
            float_source,
            customer.card,
            vending_secret,
            now,
        )
    except Conflict as exc:
        if exc.code == "insufficient_funds" and exc.details:
            raise _float_short(exc) from None
        raise
    payment = session.get(Payment, answer["payment_id"])
    assert payment is not None  # just created
    payment.commission_fen = commission_of(amount_fen, shop.commission_bp) or None
    return answer
