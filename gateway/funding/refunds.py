"""Staff refund a payment that took money and is not yet credited at the utility: the full amount
goes back to its funding source, the payment moves to ``refunded`` (its queued write-off is then
skipped by the dispatcher), and the action is audited, all in one transaction.

Never twice: the payment row is locked and its state checked, and the ledger refuses a second
refund posting for the same payment. Never more than was paid: a refund is the payment's amount.
The bill is left as it is: whether it is payable again depends on why the money went back, which
the staff decide with the utility (docs/money.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.clock import now
from gateway.db.models import FundingSource, OutboxMessage, Payment
from gateway.errors import Conflict, NotFound, Unprocessable
from gateway.funding.take import give_back
from gateway.prepaid.fulfilment import reverse_for_staff_refund
from gateway.writeoff import TOPIC as WRITEOFF_TOPIC

MAX_REASON = 200


def refund_payment(session: Session, actor: str, payment_id: str, reason: str) -> dict[str, Any]:
    reason = reason.strip()
    if not 0 < len(reason) <= MAX_REASON:
        raise Unprocessable(
            f"Say why the money goes back (1-{MAX_REASON} characters); it is kept in the audit "
            "log.",
            code="reason_invalid",
        )
    payment = session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise NotFound(
            f"No payment {payment_id}; copy the id from the receipt or the household's list.",
            code="payment_not_found",
        )
    if payment.status == "refunded":
        raise Conflict(f"Payment {payment_id} was already refunded.", code="payment_refunded")
    if payment.status == "credited":
        # The utility has written the bill off and expects this money at settlement: giving it
        # back here alone would leave the utility's books and ours disagreeing.
        raise Conflict(
            f"Payment {payment_id} is credited at the utility (reference {payment.utility_ref}): "
            "ask the utility to reverse its write-off and refund the household from there.",
            code="payment_credited",
        )
    if payment.status != "succeeded":
        raise Conflict(
            f"Payment {payment_id} is {payment.status}: it took no money, so there is nothing "
            "to refund.",
            code="payment_not_refundable",
        )
    if payment.funding_source_id is None:
        raise Conflict(
            f"Payment {payment_id} was paid before wallets existed and has no posting to "
            "reverse; refund it at the utility's counter.",
            code="payment_not_refundable",
        )
    _refuse_while_the_utility_is_told(session, payment)
    source = session.get(FundingSource, payment.funding_source_id)
    assert source is not None  # foreign key
    reverse_for_staff_refund(session, payment, now())  # a prepaid purchase: reversed with it
    give_back(session, payment, source)
    payment.status, payment.refunded_at, payment.refund_reason = "refunded", now(), reason
    audit.record(
        session,
        actor,
        "payment_refund",
        payment_id,
        amount_fen=payment.amount_fen,
        currency=payment.currency,
        funding=source.kind,
        reason=reason,
    )
    return {
        "payment_id": payment.id,
        "status": payment.status,
        "amount_fen": payment.amount_fen,
        "currency": payment.currency,
        "funding_source": {"id": source.id, "kind": source.kind},
        "reason": reason,
    }


def _refuse_while_the_utility_is_told(session: Session, payment: Payment) -> None:
    """A dispatcher that holds the write-off checked the payment was ``succeeded`` before it
    sent it: refunding now would leave the utility writing off a payment we gave back.

    The row lock orders this against a dispatcher's claim (which skips locked rows), so either
    the claim comes first and the refund waits for the utility's answer, or the refund commits
    first and the dispatcher, reading the payment after its claim, sends nothing."""
    message = session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.topic == WRITEOFF_TOPIC, OutboxMessage.key == payment.id)
        .with_for_update()
    )
    if message is not None and message.delivered_at is None and message.claimed_by is not None:
        raise Conflict(
            f"The utility is being told of payment {payment.id} right now. Wait for its answer "
            "(the household's 查询到账 shows it, usually within a minute) and refund only if it "
            "refused; a refusal is refunded automatically.",
            code="writeoff_in_flight",
        )
