"""Payments: create (bill → single-use challenge and the fields the dongle signs) and authorize
(verify the dongle's signature and record payment, paid bill and receipt in one transaction)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.bankclient import DebitAnswer
from gateway.clock import iso, now
from gateway.db.models import Bill, Biller, Dongle, Household, Payment, Receipt, UtilityAccount
from gateway.errors import Conflict, Forbidden, Gone, NotFound, Unauthenticated, Unprocessable
from gateway.funding.sources import find_source, source_of
from gateway.funding.take import require_funds, take_funds
from gateway.ids import new_challenge, new_id
from gateway.keys import GatewayKeys
from gateway.mandates import check_limits
from gateway.masking import mask_account
from gateway.receipts import SignedReceipt, sign_receipt, to_qr
from gateway.replay import accept_counter
from gateway.sessions import find_dongle, require_active, require_key_rev
from gateway.views import b64, bill_view, biller_view
from gateway.writeoff import enqueue_writeoff
from protocol.display import display_hash, states_amount
from protocol.errors import PayloadError
from protocol.signing import Algorithm, PaymentAuthorization, load_public_key, verify


@dataclass(frozen=True, slots=True)
class Authorization:
    dongle_id: str
    key_rev: int
    counter: int
    signature: bytes
    display_text: str  # the confirmation text the household was shown; the dongle signed its hash


def _bill_paid() -> Conflict:
    return Conflict(
        "This bill has already been paid; refresh the bill list.", code="bill_already_paid"
    )


def _bill_void() -> Gone:
    # Only a purchase bill is ever void: a newer purchase for the same meter replaced it, or the
    # purchase was reversed. Its payment must never take money.
    return Gone(
        "This purchase was replaced by a newer one or reversed; nothing was paid. Start the "
        "purchase again from the meter screen.",
        code="purchase_replaced",
    )


def create_payment(
    session: Session,
    household_id: int,
    gateway_id: str,
    ttl: int,
    bill_id: str,
    amount_fen: int,
    currency: str,
    funding_source: str | None = None,
    *,
    any_account: bool = False,
) -> dict[str, Any]:
    """The payment of a bill on one of the household's accounts; ``any_account``: on any
    account (a shop's sale, gateway.shop.sales, for a customer who need not be bound anywhere)."""
    own = () if any_account else (UtilityAccount.household_id == household_id,)
    row = session.execute(
        select(Bill, UtilityAccount, Biller)
        .join(UtilityAccount, Bill.account_id == UtilityAccount.id)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .where(Bill.id == bill_id, *own)
    ).first()
    if row is None:
        raise NotFound(
            "No such bill for this household; refresh the bill list.", code="bill_not_found"
        )
    bill, account, biller = row
    if bill.status == "paid":
        raise _bill_paid()
    if bill.status == "void":
        raise _bill_void()
    if account.closed_at is not None:
        raise Conflict(
            f"{biller.name} says this account is closed (销户), so its bills cannot be paid "
            "here; nothing was charged. Contact the utility or pay at its counter.",
            code="account_closed",
        )
    if currency != bill.currency:
        raise Unprocessable(
            f"The bill is in {bill.currency}; pay it in that currency.", code="currency_mismatch"
        )
    if amount_fen != bill.amount_fen:
        raise Unprocessable(
            f"The amount must equal the bill's amount due ({bill.amount_fen} fen); refresh the "
            "bill and try again.",
            code="amount_mismatch",
        )
    # Refused here, before the household enters its PIN, when the source cannot cover the bill.
    source = find_source(session, household_id, funding_source)
    require_funds(session, source, bill.amount_fen, bill.currency)
    t = now()
    payment = Payment(
        id=new_id("pay"),
        household_id=household_id,
        bill_id=bill.id,
        status="requires_authorization",
        challenge=new_challenge(),
        timestamp=t,
        biller_code=biller.code,
        account_no=account.account_no,
        bill_ref=bill.bill_ref,
        amount_fen=bill.amount_fen,
        currency=bill.currency,
        created_at=t,
        expires_at=t + ttl,
        funding_source_id=source.id,
    )
    session.add(payment)
    return {
        "payment_id": payment.id,
        "status": payment.status,
        "expires_at": iso(payment.expires_at),
        "bill": bill_view(bill, account, biller),
        "display": {
            "biller_name": biller.name,
            "account_no_masked": mask_account(account.account_no),
            "period": bill.period,
            "amount_fen": bill.amount_fen,
            "currency": bill.currency,
        },
        "sign_fields": {
            "gateway_id": gateway_id,
            "challenge": b64(payment.challenge),
            "payment_id": payment.id,
            "biller": payment.biller_code,
            # The number as the TV shows it: the bill_ref already names the account, and a
            # session opened without the PIN never learns a full 户号 (docs/security.md).
            "account": mask_account(payment.account_no),
            "bill_ref": payment.bill_ref,
            "amount_fen": payment.amount_fen,
            "currency": payment.currency,
            "timestamp": payment.timestamp,
        },
    }


def _shown_hash(text: str) -> bytes:
    try:
        return display_hash(text)
    except PayloadError as exc:
        raise Unprocessable(
            f"The confirmation text is not one a TV app draws ({exc}); send the text exactly as "
            "the confirm screen showed it.",
            code="display_text_invalid",
        ) from None


def _check_states_amount(payment: Payment, text: str) -> None:
    # The text is what the household agreed to: it must name the amount this payment takes,
    # written as the app writes yuan (protocol/display.py), and no other amount.
    if not states_amount(text, payment.amount_fen):
        yuan, fen = divmod(payment.amount_fen, 100)
        raise Unprocessable(
            f"The confirmation text the household was shown does not state this payment's "
            f"amount ({yuan:,}.{fen:02d}) as the only amount; the payment was not recorded. "
            "Pay again from the bill list.",
            code="display_amount_mismatch",
        )


def _signed_payload(
    payment: Payment, gateway_id: str, auth: Authorization, shown_hash: bytes
) -> bytes:
    return PaymentAuthorization(
        alg=Algorithm.ES256,
        gateway_id=gateway_id,
        dongle_id=auth.dongle_id,
        key_rev=auth.key_rev,
        counter=auth.counter,
        challenge=payment.challenge,
        payment_id=payment.id,
        biller=payment.biller_code,
        account=mask_account(payment.account_no),
        bill_ref=payment.bill_ref,
        amount_fen=payment.amount_fen,
        currency=payment.currency,
        timestamp=payment.timestamp,
        display_hash=shown_hash,
    ).signed_bytes()


def _check_signature(dongle: Dongle, message: bytes, signature: bytes) -> None:
    if not verify(load_public_key(dongle.public_key), message, signature):
        raise Unauthenticated(
            "The dongle's signature does not match this payment and confirmation text; sign the "
            "fields the gateway sent for it, with the hash of the text sent here.",
            code="signature_invalid",
        )


def _answer(payment: Payment, receipt_body: str) -> dict[str, Any]:
    return {"payment_id": payment.id, "status": "succeeded", "receipt": json.loads(receipt_body)}


def authorize(
    session: Session,
    keys: GatewayKeys,
    gateway_id: str,
    payment_id: str,
    auth: Authorization,
    *,
    signed_grace: int,
) -> dict[str, Any]:
    """Record the payment exactly once; a repeated identical authorization gets the same receipt.

    A valid signature is accepted for ``signed_grace`` seconds after the payment's expiry: the
    expiry bounds how long the box may wait before asking the dongle, and a box that got the
    signature but lost the network keeps it in its journal and sends it when it can. The bill's
    state and amount are checked as for any payment, so a late signature never pays twice.

    Row locks (payment, then dongle, then bill — always this order) serialize concurrent attempts
    on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes every writer anyway.
    """
    payment = session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise NotFound("No such payment; create the payment again.", code="payment_not_found")
    if payment.status in ("processing", "failed"):
        # A bank debit under way or refused: the same authorization sent again learns where it
        # stands (and, processing, makes the caller ask the bank again: gateway.bank_debits).
        if _same_authorization(payment, auth):
            return {"payment_id": payment.id, "status": payment.status}
        raise Conflict(
            "This payment was already authorized with another authorization; fetch the payment "
            "for its state.",
            code="payment_already_authorized",
        )
    # Money taken, then written off or sent back: the same authorization replayed gets its receipt.
    if payment.status in ("succeeded", "credited", "refunded"):
        receipt = session.scalar(select(Receipt.body).where(Receipt.payment_id == payment.id))
        assert receipt is not None  # written in the same transaction as the status
        if _same_authorization(payment, auth):
            return _answer(payment, receipt)
        raise Conflict(
            "This payment already succeeded with another authorization; fetch the payment for "
            "its receipt.",
            code="payment_already_succeeded",
        )
    dongle = find_dongle(session, auth.dongle_id, lock=True)
    require_active(dongle)
    require_key_rev(dongle, auth.key_rev)
    if dongle.household_id != payment.household_id:
        raise Forbidden(
            "This dongle belongs to another household and cannot pay this bill.",
            code="dongle_not_in_household",
        )
    shown_hash = _shown_hash(auth.display_text)
    try:
        message = _signed_payload(payment, gateway_id, auth, shown_hash)
    except PayloadError:
        message = b""
    _check_signature(dongle, message, auth.signature)
    _check_states_amount(payment, auth.display_text)
    bill = session.get(Bill, payment.bill_id, with_for_update=True)
    assert bill is not None  # foreign key
    if bill.status == "paid":
        raise _bill_paid()
    if bill.status == "void":
        raise _bill_void()
    if now() > payment.expires_at + signed_grace:
        raise Gone(
            "The payment expired before it was authorized; create a new payment.",
            code="payment_expired",
        )
    accept_counter(session, dongle, auth.counter)
    if bill.amount_fen != payment.amount_fen or bill.currency != payment.currency:
        raise Conflict("The bill changed; create a new payment.", code="amount_mismatch")
    source = source_of(session, payment)
    if source.kind == "mandate":
        # The bank is outside this transaction: the authorization and the debit's intent (the
        # payment in processing, its id the bank's idempotency key) are committed first, and
        # gateway.bank_debits asks the bank afterwards.
        check_limits(session, source, payment.amount_fen, payment.currency, lock=True)
        _record_authorization(payment, bill, auth, shown_hash, "processing", now())
        return {"payment_id": payment.id, "status": "processing"}
    # The money moves in this transaction: if the wallet fell short since create, nothing of
    # this authorization is recorded (counter included) and the household can pay again.
    take_funds(session, payment, source)
    t = now()
    _record_authorization(payment, bill, auth, shown_hash, "succeeded", t)
    payment.succeeded_at = t
    enqueue_writeoff(session, payment, t)  # the utility hears of it after the commit
    body = _issue_receipt(session, keys, gateway_id, payment, bill)
    return _answer(payment, body)


def _same_authorization(payment: Payment, auth: Authorization) -> bool:
    recorded = (payment.dongle_id, payment.key_rev, payment.counter, payment.signature)
    return recorded == (auth.dongle_id, auth.key_rev, auth.counter, auth.signature)


def _record_authorization(
    payment: Payment, bill: Bill, auth: Authorization, shown_hash: bytes, status: str, t: int
) -> None:
    """The payment takes the authorization and holds the bill (partial unique index)."""
    payment.status = status
    payment.dongle_id, payment.key_rev = auth.dongle_id, auth.key_rev
    payment.counter, payment.signature = auth.counter, auth.signature
    payment.display_text, payment.display_hash = auth.display_text, shown_hash
    bill.status, bill.paid_at, bill.payment_id = "paid", t, payment.id


def finish_bank_debit(
    session: Session,
    keys: GatewayKeys,
    gateway_id: str,
    payment_id: str,
    answer: DebitAnswer | None,
) -> dict[str, Any]:
    """Apply the bank's answer to a processing payment, once; answers the payment's state.

    Taken: BANK_CLEARING → payable(biller), succeeded, receipt, write-off queued. Refused:
    failed, nothing posted, the bill payable again. A payment no longer processing (another
    caller applied the answer first), or ``answer`` None, is left as it is."""
    payment = session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise NotFound("No such payment; create the payment again.", code="payment_not_found")
    if payment.status == "processing" and answer is not None:
        bill = session.get(Bill, payment.bill_id, with_for_update=True)
        assert bill is not None  # foreign key
        t = now()
        if answer.outcome == "taken":
            take_funds(session, payment, source_of(session, payment))
            payment.status, payment.succeeded_at = "succeeded", t
            enqueue_writeoff(session, payment, t)
            return _answer(payment, _issue_receipt(session, keys, gateway_id, payment, bill))
        payment.status = "failed"
        bill.status, bill.paid_at, bill.payment_id = "unpaid", None, None
    if payment.status in ("processing", "failed"):
        return {"payment_id": payment.id, "status": payment.status}
    receipt = session.scalar(select(Receipt.body).where(Receipt.payment_id == payment.id))
    assert receipt is not None  # written in the same transaction as the status
    return _answer(payment, receipt)


def _issue_receipt(
    session: Session, keys: GatewayKeys, gateway_id: str, payment: Payment, bill: Bill
) -> str:
    account = session.get(UtilityAccount, bill.account_id)
    biller = session.get(Biller, payment.biller_code)
    household = session.get(Household, payment.household_id)
    assert account is not None and biller is not None and household is not None
    assert payment.succeeded_at is not None and payment.dongle_id is not None
    assert payment.counter is not None and payment.display_hash is not None
    signed = SignedReceipt(
        alg=int(Algorithm.ES256),
        gateway_id=gateway_id,
        receipt_no=new_id("rcp"),
        payment_id=payment.id,
        biller=biller.code,
        account_no_masked=mask_account(account.account_no),
        bill_ref=bill.bill_ref,
        period=bill.period,
        amount_fen=payment.amount_fen,
        currency=payment.currency,
        paid_at_unix=payment.succeeded_at,
        dongle_id=payment.dongle_id,
        counter=payment.counter,
        display_hash=payment.display_hash.hex(),
    )
    signature = sign_receipt(keys.receipt_key, signed)
    receipt = {
        "receipt_no": signed.receipt_no,
        "payment_id": payment.id,
        "gateway_id": gateway_id,
        "household_no": household.household_no,
        "biller": biller_view(biller),
        "account_no_masked": signed.account_no_masked,
        "bill_ref": signed.bill_ref,
        "period": signed.period,
        "amount_fen": signed.amount_fen,
        "currency": signed.currency,
        "paid_at": iso(signed.paid_at_unix),
        "paid_at_unix": signed.paid_at_unix,
        "dongle_id": signed.dongle_id,
        "counter": signed.counter,
        "display_hash": signed.display_hash,
        "receipt_key_id": keys.receipt_key_id,
        "signature": base64.b64encode(signature).decode(),
        "qr": to_qr(signed, signature),
    }
    body = json.dumps(receipt, ensure_ascii=False)
    session.add(Receipt(receipt_no=signed.receipt_no, payment_id=payment.id, body=body))
    return body


def public_receipt(session: Session, receipt_no: str) -> dict[str, Any]:
    body = session.scalar(select(Receipt.body).where(Receipt.receipt_no == receipt_no))
    if body is None:
        raise NotFound(
            "No receipt with this number; check the number printed under the QR code.",
            code="receipt_not_found",
        )
    return json.loads(body)
