"""A purchase's fulfilment as its payment moves: paid → ``pending``, refunded → ``reversed``,
and for remote meters credited by the utility → ``done``.

Stored, not derived from the payment: the partial unique index "one pending purchase per meter"
must see it, and it is written in the same transaction as the payment's own state, so the two
never disagree. Ordinary bills pay nothing for it: gateway.writeoff calls in here only for bills
of kind ``purchase``, and learns the kind from the bill row the payment already holds locked.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import Bill, Payment, PrepaidMeter, Purchase
from gateway.db.models import PrepaidRules as RulesRow
from gateway.errors import Conflict

log = logging.getLogger("tvpay.gateway.prepaid")


def purchase_of(session: Session, payment: Payment, *, lock: bool = False) -> Purchase | None:
    """The purchase a payment pays for, or None for an ordinary bill's payment."""
    query = select(Purchase).where(Purchase.payment_id == payment.id)
    return session.scalar(query.with_for_update() if lock else query)


def mark_paid(session: Session, purchase: Purchase, payment: Payment, now: int) -> PrepaidMeter:
    """The payment took the money: the meter credit is now owed (``pending``). A card purchase
    must be written within the utility's fulfilment window, or it is reversed (冲正)."""
    meter = session.get(PrepaidMeter, purchase.meter_id)
    assert meter is not None  # foreign key
    if purchase.fulfilment == "awaiting_payment":
        purchase.fulfilment = "pending"
        if meter.kind == "card":
            rules = session.get(RulesRow, payment.biller_code)
            assert rules is not None  # a purchase is only created under its biller's rules
            purchase.fulfil_by = now + rules.fulfil_window_seconds
    return meter


def mark_credited(session: Session, payment: Payment, now: int) -> None:
    """The utility acknowledged the purchase: for a remote meter that is the credit itself."""
    purchase = purchase_of(session, payment, lock=True)
    if purchase is None or purchase.fulfilment != "pending":
        return
    meter = session.get(PrepaidMeter, purchase.meter_id)
    assert meter is not None  # foreign key
    if meter.kind == "remote":
        purchase.fulfilment, purchase.fulfilled_at = "done", now


def mark_refunded(session: Session, purchase: Purchase, bill: Bill, now: int) -> None:
    """The money went back: the purchase is reversed and its bill can never be paid again.

    A purchase already fulfilled keeps ``done`` (the meter holds the energy) and the
    disagreement is logged for staff: that happens only when the utility refuses a sale the meter
    already credited, and must be settled with the utility, not here."""
    if purchase.fulfilment == "done":
        log.error(
            "event=purchase_refunded_after_fulfilment purchase_id=%s payment_id=%s",
            purchase.id,
            purchase.payment_id,
        )
        return
    purchase.fulfilment, purchase.reversed_at = "reversed", now
    bill.status = "void"


def reverse_for_staff_refund(session: Session, payment: Payment, now: int) -> None:
    """Staff refund a purchase's payment: refused once the energy is on the meter (the utility
    must take it back first); otherwise the purchase is reversed with the refund."""
    purchase = purchase_of(session, payment, lock=True)
    if purchase is None:
        return
    if purchase.fulfilment == "done":
        raise Conflict(
            f"Payment {payment.id} bought energy that is already on the meter (purchase "
            f"{purchase.id}); settle it with the utility, which can take the energy back.",
            code="purchase_fulfilled",
        )
    bill = session.get(Bill, payment.bill_id, with_for_update=True)
    assert bill is not None  # foreign key
    mark_refunded(session, purchase, bill, now)
