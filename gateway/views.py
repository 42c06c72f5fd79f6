"""Database rows turned into the JSON objects of docs/gateway.md (masking personal data)."""

from __future__ import annotations

import base64
import json
from typing import Any

from gateway.clock import iso, now, today
from gateway.db.models import Bill, Biller, Dongle, Household, Payment, UtilityAccount
from gateway.masking import mask_account, mask_address, mask_name


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def biller_view(biller: Biller) -> dict[str, str]:
    return {"code": biller.code, "name": biller.name}


def is_overdue(bill: Bill) -> bool:
    return bill.status == "unpaid" and bill.due_date < today()


def bill_view(bill: Bill, account: UtilityAccount, biller: Biller) -> dict[str, Any]:
    return {
        "bill_id": bill.id,
        "account_id": account.id,
        "utility": account.utility,
        "biller": biller_view(biller),
        "account_no_masked": mask_account(account.account_no),
        "bill_ref": bill.bill_ref,
        "period": bill.period,
        "amount_fen": bill.amount_fen,
        "currency": bill.currency,
        "due_date": bill.due_date,
        "status": bill.status,
        "overdue": is_overdue(bill),
        "issued_at": iso(bill.issued_at),
        "paid_at": iso(bill.paid_at),
        "payment_id": bill.payment_id,
    }


def account_view(account: UtilityAccount, biller: Biller, unpaid: list[Bill]) -> dict[str, Any]:
    due = min((b.due_date for b in unpaid), default=None)
    currencies = {b.currency for b in unpaid}
    return {
        "account_id": account.id,
        "utility": account.utility,
        "biller": biller_view(biller),
        "account_no_masked": mask_account(account.account_no),
        "holder_name_masked": mask_name(account.holder_name),
        "address_masked": mask_address(account.address),
        "amount_due_fen": sum(b.amount_fen for b in unpaid),
        "currency": currencies.pop() if len(currencies) == 1 else "CNY",
        "due_date": due,
        "overdue": any(is_overdue(b) for b in unpaid),
        "unpaid_bills": len(unpaid),
        "closed": account.closed_at is not None,
        "bound_at": iso(account.bound_at),
    }


def payment_status(payment: Payment, bill: Bill) -> str:
    """Every state but requires_authorization is stored (succeeded, credited, refunded, …);
    expired and canceled follow from facts that only move forward (time passing, the bill being
    paid), so the state does too."""
    if payment.status != "requires_authorization":
        return payment.status
    if bill.status in ("paid", "void"):  # void: a purchase replaced before it was paid
        return "canceled"
    if now() > payment.expires_at:
        return "expired"
    return payment.status


def payment_view(
    payment: Payment, bill: Bill, account: UtilityAccount, biller: Biller, receipt: str | None
) -> dict[str, Any]:
    return {
        "payment_id": payment.id,
        "status": payment_status(payment, bill),
        "bill_id": bill.id,
        "account_id": account.id,
        "biller": biller_view(biller),
        "account_no_masked": mask_account(account.account_no),
        "period": bill.period,
        "amount_fen": payment.amount_fen,
        "currency": payment.currency,
        "created_at": iso(payment.created_at),
        "expires_at": iso(payment.expires_at),
        "succeeded_at": iso(payment.succeeded_at),
        # The utility's answer to the write-off: 已到账 with its reference, or why it refused.
        "utility_ref": payment.utility_ref,
        "credited_at": iso(payment.credited_at),
        "refunded_at": iso(payment.refunded_at),
        "refund_reason": payment.refund_reason,
        "dongle_id": payment.dongle_id,
        "receipt": json.loads(receipt) if receipt else None,
    }


def dongle_view(dongle: Dongle, household: Household) -> dict[str, Any]:
    return {
        "dongle_id": dongle.dongle_id,
        "key_rev": dongle.key_rev,
        "status": dongle.status,
        "household_no": household.household_no,
        "public_key": b64(dongle.public_key),
        "certificate": b64(dongle.certificate),
        "last_counter": dongle.last_counter,
        "registered_at": iso(dongle.registered_at),
        "activated_at": iso(dongle.activated_at),
        "revoked_at": iso(dongle.revoked_at),
        "revoke_reason": dongle.revoke_reason,
    }


def household_view(household: Household, dongles: list[Dongle]) -> dict[str, Any]:
    return {
        "household_no": household.household_no,
        "name": household.name,
        "address": household.address,
        "created_at": iso(household.created_at),
        "dongles": [dongle_view(d, household) for d in dongles],
    }
