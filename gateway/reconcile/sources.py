"""The two files reconciled and what each is compared with: the utility's statement against our
payments of one biller, the bank's settlement against our postings on bank clearing.

Each source turns a file row into a ``Theirs`` (refusing values out of shape, or of another day),
loads our records of the day, and looks up records outside the day for keys the file names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any, ClassVar, Protocol

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from gateway.db.models import LedgerTransfer, Payment
from gateway.ledger.accounts import BANK_CLEARING
from gateway.reconcile.csvfile import (
    CURRENCY,
    DIGITS,
    TOKEN,
    Fields,
    FileFormatError,
    Shape,
    positive,
)
from gateway.reconcile.days import bounds
from gateway.reconcile.rules import Ours, ScopeMismatch, State, Theirs

UTILITY_COLUMNS: dict[str, Shape] = {
    "utility_ref": TOKEN,
    "payment_id": TOKEN,
    "account_no": TOKEN,
    "bill_ref": TOKEN,
    "amount_fen": DIGITS,
    "currency": CURRENCY,
    "written_off_at": DIGITS,
}
BANK_COLUMNS: dict[str, Shape] = {
    "debit_id": TOKEN,
    "idempotency_key": TOKEN,
    "kind": (r"debit|reversal", "debit or reversal"),  # our postings: payment and refund
    "amount_fen": DIGITS,
    "currency": CURRENCY,
    "at": TOKEN,
}
_STATES: dict[str, State] = {"credited": "done", "succeeded": "pending", "refunded": "refunded"}


class Source(Protocol):
    name: str  # "utility" or "bank"
    columns: Mapping[str, Shape]
    scope: str  # the biller, or "" for the bank
    day: date

    def row(self, number: int, row: Fields) -> Theirs: ...
    def ours(self, session: Session) -> dict[str, Ours]: ...
    def lookup(self, session: Session, keys: list[str]) -> Mapping[str, Ours]: ...


_PAYMENT_COLUMNS = (
    Payment.id,
    Payment.amount_fen,
    Payment.currency,
    Payment.status,
    Payment.utility_ref,
    Payment.biller_code,
)


def _payment_ours(p: Row) -> Ours:
    return Ours(
        p.id,
        p.amount_fen,
        p.currency,
        _STATES.get(p.status, "untaken"),
        p.utility_ref,
        p.biller_code,
    )


@dataclass(frozen=True)
class UtilityStatement:
    """``GET /statements/{date}.csv`` of one biller's utility."""

    biller: str
    day: date
    name: str = "utility"
    columns: ClassVar[Mapping[str, Shape]] = UTILITY_COLUMNS

    @property
    def scope(self) -> str:
        return self.biller

    @cached_property
    def window(self) -> tuple[int, int]:
        return bounds(self.day)

    def row(self, number: int, row: Fields) -> Theirs:
        at = row["written_off_at"]
        start, end = self.window
        if not start <= int(at) < end:
            raise ScopeMismatch(
                f"written off at {at}, not on {self.day} (UTC): is this the right statement?",
                number,
            )
        amount = positive(row, "amount_fen", number)
        return Theirs(number, row["payment_id"], amount, row["currency"], row["utility_ref"])

    def ours(self, session: Session) -> dict[str, Ours]:
        start, end = bounds(self.day)
        credited = (Payment.status == "credited") & Payment.credited_at.between(start, end - 1)
        waiting = (Payment.status == "succeeded") & Payment.succeeded_at.between(start, end - 1)
        rows = session.execute(
            select(*_PAYMENT_COLUMNS).where(Payment.biller_code == self.biller, credited | waiting)
        )
        return {p.id: _payment_ours(p) for p in rows}

    def lookup(self, session: Session, keys: list[str]) -> Mapping[str, Ours]:
        rows = session.execute(select(*_PAYMENT_COLUMNS).where(Payment.id.in_(keys)))
        return {p.id: _payment_ours(p) for p in rows}


def _transfer_ours(t: LedgerTransfer) -> Ours | None:
    if t.kind == "payment" and t.debit_account == BANK_CLEARING:
        return Ours(f"debit:{t.ref}", t.amount_fen, t.currency, "done")
    if t.kind == "refund" and t.credit_account == BANK_CLEARING:
        return Ours(f"reversal:{t.ref}", t.amount_fen, t.currency, "done")
    return None


def _clearing(query: Select[Any]) -> Select[Any]:
    """``query`` narrowed to the transfers in or out of bank clearing."""
    return query.where(
        (LedgerTransfer.debit_account == BANK_CLEARING)
        | (LedgerTransfer.credit_account == BANK_CLEARING)
    )


@dataclass(frozen=True)
class BankSettlement:
    """``GET /settlements/{date}.csv``: the day's debits and reversals, keyed by payment id."""

    day: date
    name: str = "bank"
    columns: ClassVar[Mapping[str, Shape]] = BANK_COLUMNS
    scope: str = ""

    def row(self, number: int, row: Fields) -> Theirs:
        at = row["at"]
        if _utc_day(at, number) != self.day:
            raise ScopeMismatch(
                f"dated {at}, not {self.day} (UTC): is this the right settlement file?", number
            )
        key = f"{row['kind']}:{row['idempotency_key']}"
        amount = positive(row, "amount_fen", number)
        return Theirs(number, key, amount, row["currency"], row["debit_id"])

    def ours(self, session: Session) -> dict[str, Ours]:
        start, end = bounds(self.day)
        rows = session.scalars(
            _clearing(select(LedgerTransfer)).where(
                LedgerTransfer.created_at.between(start, end - 1)
            )
        )
        found = (_transfer_ours(t) for t in rows)
        return {o.key: o for o in found if o is not None}

    def lookup(self, session: Session, keys: list[str]) -> Mapping[str, Ours]:
        refs = [k.split(":", 1)[1] for k in keys]
        rows = session.scalars(
            _clearing(select(LedgerTransfer)).where(LedgerTransfer.ref.in_(refs))
        )
        found = (_transfer_ours(t) for t in rows)
        return {o.key: o for o in found if o is not None}


def _utc_day(value: str, number: int) -> date:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise FileFormatError(f"at {value[:40]!r} is not an ISO 8601 time with its offset", number)
    return parsed.astimezone(UTC).date()
