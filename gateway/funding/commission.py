"""A shop's commission on a sale (docs/money.md): ``payable(biller) → commission(shop)``, posted in
the transaction that takes the sale's money and returned in the one that gives it back, so the
utility's payable shrinks by exactly the commission the shop keeps. The amount is fixed on the
payment when the sale is created (``Payment.commission_fen``): a later change of the shop's rate
never changes what a refund returns."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.db.models import Household, Payment
from gateway.ledger import Leg, accounts, post

POSTING = "commission"
RETURN = "commission_back"


def _leg(session: Session, payment: Payment) -> Leg | None:
    """payable(biller) → commission(shop) of a shop's sale; None for any other payment."""
    if not payment.commission_fen:
        return None
    shop = session.get(Household, payment.household_id)
    assert shop is not None  # foreign key
    return Leg(
        accounts.payable(payment.biller_code),
        accounts.commission(shop.household_no),
        payment.commission_fen,
    )


def post_commission(session: Session, payment: Payment) -> None:
    """Carve the shop's commission out of what we owe the biller (nothing for other payments)."""
    leg = _leg(session, payment)
    if leg is not None:
        post(session, kind=POSTING, ref=payment.id, currency=payment.currency, legs=[leg])


def return_commission(session: Session, payment: Payment) -> None:
    """A refunded sale earns nothing: the commission goes back to the biller's payable. Posting
    twice is a no-op, as for the refund itself."""
    leg = _leg(session, payment)
    if leg is not None:
        back = Leg(leg.credit, leg.debit, leg.amount_fen)
        post(session, kind=RETURN, ref=payment.id, currency=payment.currency, legs=[back])
