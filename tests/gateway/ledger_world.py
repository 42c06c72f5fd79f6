"""A household with bills in a real gateway database, for driving the ledger and the funding
functions directly (no HTTP), each scenario inside one transaction that is rolled back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from gateway.bills_import import BillRow, import_rows
from gateway.db.models import Bill, Household, LedgerAccount, Payment, UtilityAccount
from gateway.funding.sources import source_of
from gateway.funding.take import take_funds
from gateway.ledger import accounts
from gateway.ledger.rules import digest
from gateway.payments import create_payment
from gateway.registry import create_household

BILLER = "TEST-LEDGER"


@dataclass
class LedgerHousehold:
    id: int
    number: str
    bill_ids: list[str]
    amounts: list[int]

    @property
    def wallet(self) -> str:
        return accounts.wallet(self.number)


@contextmanager
def rolled_back(engine: Engine) -> Iterator[Session]:
    """One transaction that never commits: each scenario starts from the same empty ledger."""
    with Session(engine) as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


def household_with_bills(session: Session, amounts: list[int]) -> LedgerHousehold:
    number = str(uuid.uuid4().int)[:10]
    create_household(session, "test", number, "张伟", "北京市朝阳区建设路1号")
    account_no = str(uuid.uuid4().int)[:10]
    rows = [
        BillRow(BILLER, "测试供电", "electricity", account_no, "张伟", "北京市", f"L-{i}",
                f"2025-{i + 1:02d}", amount, "CNY", f"2025-{i + 1:02d}-28")
        for i, amount in enumerate(amounts)
    ]  # fmt: skip
    import_rows(session, rows, "test")
    household = session.scalar(select(Household).where(Household.household_no == number))
    account = session.scalar(select(UtilityAccount).where(UtilityAccount.account_no == account_no))
    assert household is not None and account is not None
    account.household_id, account.bound_at = household.id, 1
    bill_ids = list(
        session.scalars(select(Bill.id).where(Bill.account_id == account.id).order_by(Bill.period))
    )
    return LedgerHousehold(household.id, number, bill_ids, amounts)


def new_payment(session: Session, household: LedgerHousehold, index: int) -> str:
    answer = create_payment(
        session,
        household.id,
        "tvpay-gw-test",
        300,
        household.bill_ids[index],
        household.amounts[index],
        "CNY",
    )
    return answer["payment_id"]


def succeed(session: Session, payment_id: str) -> None:
    """What authorize does once the dongle's signature is verified: take the money, mark the
    payment succeeded and the bill paid (gateway.payments.authorize)."""
    payment = session.get(Payment, payment_id)
    assert payment is not None
    bill = session.get(Bill, payment.bill_id)
    assert bill is not None
    take_funds(session, payment, source_of(session, payment))
    payment.status, payment.succeeded_at = "succeeded", 1
    bill.status, bill.paid_at, bill.payment_id = "paid", 1, payment.id


def plant_transfer(
    session: Session, kind: str, ref: str, debit: str, credit: str, amount_fen: int
) -> None:
    """Insert a transfer around the ledger's code (as a hand-written INSERT would), with a
    correct digest: only the rules about balances can find it."""
    fields = {
        "txn_id": "txn_planted",
        "kind": kind,
        "ref": ref,
        "debit": debit,
        "credit": credit,
        "amount_fen": amount_fen,
        "currency": "CNY",
        "created_at": 1,
    }
    for code in (debit, credit):
        if session.get(LedgerAccount, code) is None:
            session.add(
                LedgerAccount(code=code, kind=accounts.kind_of(code), currency="CNY", created_at=1)
            )
    session.flush()
    session.execute(
        text(
            "INSERT INTO ledger_transfers (txn_id, debit_account, credit_account, amount_fen, "
            "currency, kind, ref, created_at, digest) VALUES (:txn_id, :debit, :credit, "
            ":amount_fen, :currency, :kind, :ref, :created_at, :digest)"
        ),
        {**fields, "digest": digest(**fields)},
    )
