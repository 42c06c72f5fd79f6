"""What a household sees on the TV: its accounts (unbind; binding is gateway.binding), bills,
usage and payments."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import (
    Bill,
    Biller,
    Household,
    Payment,
    PrepaidMeter,
    Receipt,
    Usage,
    UtilityAccount,
)
from gateway.errors import NotFound
from gateway.masking import mask_address, mask_name
from gateway.views import account_view, bill_view, payment_view

UTILITIES = ("electricity", "water", "gas", "phone", "tv")


def household_summary(session: Session, household_id: int, dongle_id: str) -> dict[str, Any]:
    household = session.get(Household, household_id)
    assert household is not None  # sessions reference households
    return {
        "household_no": household.household_no,
        "name_masked": mask_name(household.name),
        "address_masked": mask_address(household.address),
        "dongle_id": dongle_id,
    }


def _account(session: Session, household_id: int, account_id: str) -> tuple[UtilityAccount, Biller]:
    row = session.execute(
        select(UtilityAccount, Biller)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .where(UtilityAccount.id == account_id, UtilityAccount.household_id == household_id)
    ).first()
    if row is None:
        raise NotFound(
            "No such account is bound to this household; refresh the account list.",
            code="account_not_found",
        )
    return row[0], row[1]


def list_accounts(session: Session, household_id: int) -> list[dict[str, Any]]:
    """The household's billed accounts; a prepaid meter's account has no bills and is listed
    with its meter (GET /meters) instead."""
    prepaid = select(PrepaidMeter.id).where(PrepaidMeter.account_id == UtilityAccount.id)
    rows = session.execute(
        select(UtilityAccount, Biller)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .where(UtilityAccount.household_id == household_id, ~prepaid.exists())
        .order_by(UtilityAccount.bound_at, UtilityAccount.id)
    ).all()
    unpaid: dict[str, list[Bill]] = defaultdict(list)
    ids = [account.id for account, _ in rows]
    if ids:
        for bill in session.scalars(
            select(Bill).where(
                Bill.account_id.in_(ids), Bill.status == "unpaid", Bill.kind == "bill"
            )
        ):
            unpaid[bill.account_id].append(bill)
    return [account_view(a, b, unpaid[a.id]) for a, b in rows]


def unbind_account(session: Session, household_id: int, account_id: str) -> None:
    account, _ = _account(session, household_id, account_id)
    account.household_id = None
    account.bound_at = None


def account_bills(session: Session, household_id: int, account_id: str) -> list[dict[str, Any]]:
    account, biller = _account(session, household_id, account_id)
    bills = session.scalars(
        select(Bill)
        .where(Bill.account_id == account.id, Bill.kind == "bill")
        .order_by(Bill.period.desc())
    )
    return [bill_view(b, account, biller) for b in bills]


def household_bills(session: Session, household_id: int, status: str) -> list[dict[str, Any]]:
    query = (
        select(Bill, UtilityAccount, Biller)
        .join(UtilityAccount, Bill.account_id == UtilityAccount.id)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        # A purchase's one-off bill is shown as the purchase (gateway.prepaid), never as a bill.
        .where(UtilityAccount.household_id == household_id, Bill.kind == "bill")
    )
    if status != "all":
        query = query.where(Bill.status == status)
    rows = session.execute(query.order_by(Bill.due_date, Bill.id).limit(500))
    return [bill_view(b, a, bl) for b, a, bl in rows]


def account_usage(session: Session, household_id: int, account_id: str) -> dict[str, Any]:
    account, _ = _account(session, household_id, account_id)
    months = list(
        session.scalars(
            select(Usage)
            .where(Usage.account_id == account.id)
            .order_by(Usage.month.desc())
            .limit(12)
        )
    )
    return {
        "account_id": account.id,
        "utility": account.utility,
        "unit": account.unit,
        "months": [
            {
                "month": u.month,
                "quantity": u.quantity_milli / 1000,
                "amount_fen": u.amount_fen,
                "currency": u.currency,
            }
            for u in reversed(months)
        ],
    }


def _payment_rows(session: Session, *conditions: Any, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Payment, Bill, UtilityAccount, Biller, Receipt.body)
        .join(Bill, Payment.bill_id == Bill.id)
        .join(UtilityAccount, Bill.account_id == UtilityAccount.id)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .outerjoin(Receipt, Receipt.payment_id == Payment.id)
        .where(*conditions)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(limit)
    )
    return [payment_view(p, b, a, bl, r) for p, b, a, bl, r in rows]


def list_payments(session: Session, household_id: int, limit: int) -> list[dict[str, Any]]:
    return _payment_rows(session, Payment.household_id == household_id, limit=limit)


def get_payment(session: Session, household_id: int, payment_id: str) -> dict[str, Any]:
    found = _payment_rows(
        session, Payment.household_id == household_id, Payment.id == payment_id, limit=1
    )
    if not found:
        raise NotFound("No such payment for this household.", code="payment_not_found")
    return found[0]
