"""Write-off at the utility (销账): the notification a paid bill sends, and what the gateway does
with the utility's answer.

``succeeded`` → ``credited`` when the utility writes the bill off (its reference kept);
``succeeded`` → ``refunded`` when it refuses, with the money posted back to where it came from.
An answer only ever moves a ``succeeded`` payment: a repeated or late answer changes nothing, and
an answer that contradicts an earlier one is logged for staff rather than obeyed.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from gateway.clock import iso
from gateway.db.models import (
    Bill,
    FundingSource,
    Payment,
    PrepaidMeter,
    Purchase,
    UtilityAccount,
)
from gateway.funding.take import give_back
from gateway.keys import GatewayKeys
from gateway.outbox import enqueue
from gateway.prepaid import fulfilment
from protocol.signing import sign

log = logging.getLogger("tvpay.gateway.writeoff")

TOPIC = "utility.writeoff"
REVERSAL_TOPIC = "bank.reversal"
SIGNATURE_HEADER = "TVPay-Signature"

# Why the utility refused, and what that means for the bill (docs/money.md).
PAID_ELSEWHERE = "bill_paid_elsewhere"  # paid at the counter: the bill stays paid
ACCOUNT_CLOSED = (
    "account_closed"  # 销户: the account's bills are refused before the PIN from now on
)

Outcome = Literal["credited", "refunded", "unchanged", "unknown_payment"]


@dataclass(frozen=True, slots=True)
class UtilityAnswer:
    status: Literal["credited", "rejected", "unknown"]  # unknown: the utility has no record yet
    utility_ref: str | None = None
    reason: str | None = None


def notification(
    payment: Payment, purchase: tuple[Purchase, PrepaidMeter] | None = None
) -> dict[str, Any]:
    """The JSON object the utility receives for a paid bill, or for a prepaid purchase."""
    body: dict[str, Any] = {
        "payment_id": payment.id,
        "biller": payment.biller_code,
        "account_no": payment.account_no,
        "bill_ref": payment.bill_ref,
        "amount_fen": payment.amount_fen,
        "currency": payment.currency,
        "paid_at": iso(payment.succeeded_at),
    }
    if purchase is not None:
        bought, meter = purchase
        body["kind"] = "purchase"
        body["purchase"] = {
            "meter_no": meter.meter_no,
            "meter_kind": meter.kind,
            "energy_wh": bought.energy_wh,
        }
    return body


def enqueue_writeoff(session: Session, payment: Payment, now: int) -> None:
    """Queue the notification in the transaction that makes the payment succeed.

    A purchase becomes ``pending``; the utility hears of it now only for a remote meter (the
    utility's credit is the fulfilment). A card or token purchase is told when the meter credit
    exists (``queue_fulfilled``): the utility's vending records must not show a sale the meter
    never got."""
    # Already in the session, locked, for every caller that makes a payment succeed.
    bill = session.get(Bill, payment.bill_id)
    assert bill is not None  # foreign key
    if bill.kind != "purchase":
        enqueue(session, TOPIC, payment.id, notification(payment), now)
        return
    purchase = fulfilment.purchase_of(session, payment, lock=True)
    assert purchase is not None  # a purchase bill is made with its purchase
    meter = fulfilment.mark_paid(session, purchase, payment, now)
    if meter.kind == "remote" or purchase.fulfilment == "done":
        queue_fulfilled(session, purchase, now)


def queue_fulfilled(session: Session, purchase: Purchase, now: int) -> None:
    """Tell the utility of a purchase whose meter credit exists (once: the outbox key is the
    payment id)."""
    payment = session.get(Payment, purchase.payment_id)
    meter = session.get(PrepaidMeter, purchase.meter_id)
    assert payment is not None and meter is not None  # foreign keys
    enqueue(session, TOPIC, payment.id, notification(payment, (purchase, meter)), now)


def signed_body(keys: GatewayKeys, payload: dict[str, Any]) -> tuple[bytes, str]:
    """The exact body sent and its ``TVPay-Signature`` header (receipt key, ES256 r||s)."""
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    signature = base64.b64encode(sign(keys.receipt_key, body)).decode()
    return body, f"{keys.receipt_key_id}:{signature}"


def record_answer(session: Session, payment_id: str, answer: UtilityAnswer, now: int) -> Outcome:
    """Apply the utility's answer for ``payment_id``, once."""
    payment = session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        log.warning("event=writeoff_ack_unknown_payment payment_id=%s", payment_id[:64])
        return "unknown_payment"
    if answer.status == "unknown":
        return "unchanged"
    if payment.status != "succeeded":
        _log_late(payment, answer)
        return "unchanged"
    if answer.status == "credited":
        payment.status, payment.utility_ref, payment.credited_at = (
            "credited",
            answer.utility_ref,
            now,
        )
        log.info(
            "event=payment_credited payment_id=%s utility_ref=%s", payment.id, answer.utility_ref
        )
        fulfilment.mark_credited(session, payment, now)
        return "credited"
    _refund(session, payment, answer.reason or "rejected", now)
    return "refunded"


def _log_late(payment: Payment, answer: UtilityAnswer) -> None:
    agrees = (
        payment.status == "credited"
        and answer.status == "credited"
        and answer.utility_ref == payment.utility_ref
    ) or (payment.status == "refunded" and answer.status == "rejected")
    level = logging.INFO if agrees else logging.ERROR
    log.log(
        level,
        "event=writeoff_ack_ignored payment_id=%s status=%s answer=%s utility_ref=%s",
        payment.id,
        payment.status,
        answer.status,
        answer.utility_ref,
    )


def _refund(session: Session, payment: Payment, reason: str, now: int) -> None:
    payment.status, payment.refunded_at, payment.refund_reason = "refunded", now, reason
    bill = session.get(Bill, payment.bill_id, with_for_update=True)
    assert bill is not None  # foreign key
    if reason == PAID_ELSEWHERE:
        bill.payment_id = None  # paid, but not by this payment
    else:
        # Account closed, amount disputed…: the bill is not paid.
        bill.status, bill.paid_at, bill.payment_id = "unpaid", None, None
    if reason == ACCOUNT_CLOSED:
        account = session.get(UtilityAccount, bill.account_id)
        assert account is not None  # foreign key
        account.closed_at = account.closed_at or now
    if bill.kind == "purchase":
        purchase = fulfilment.purchase_of(session, payment, lock=True)
        assert purchase is not None  # a purchase bill is made with its purchase
        fulfilment.mark_refunded(session, purchase, bill, now)
    log.info("event=payment_refunded payment_id=%s reason=%s", payment.id, reason)
    if payment.funding_source_id is None:
        return  # paid before the ledger: nothing was posted, nothing to post back
    source = session.get(FundingSource, payment.funding_source_id)
    assert source is not None  # foreign key
    # Wallet: credited back now. Mandate: posted to bank clearing, and the bank's reversal queued
    # (topic bank.reversal) for the dispatcher to send.
    give_back(session, payment, source)
