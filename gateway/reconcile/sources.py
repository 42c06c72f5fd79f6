"""The two files reconciled and what each is compared with: the utility's statement against our
payments of one biller, the bank's settlement against our postings on bank clearing.

Each source turns a file row into a ``Theirs`` (refusing values out of shape, or of another day),
loads our records of the day, and looks up records outside the day for keys the file names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from gateway.db.models import LedgerTransfer, Payment
from gateway.ledger.accounts import BANK_CLEARING
from gateway.reconcile.csvfile import Fields, amount, currency, field
from gateway.reconcile.days import bounds
from gateway.reconcile.rules import Ours, ScopeMismatch, State, Theirs

UTILITY_COLUMNS = (
    "utility_ref",
    "payment_id",
    "account_no",
    "bill_ref",
    "amount_fen",
    "currency",
    "written_off_at",
)
BANK_COLUMNS = ("debit_id", "idempotency_key", "kind", "amount_fen", "currency", "at")
_STATES: dict[str, State] = {"credited": "done", "succeeded": "pending", "refunded": "refunded"}


def _token(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isascii() and value.isprintable() and " " not in value


class Source(Protocol):
    name: str  # "utility" or "bank"
    columns: tuple[str, ...]
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
    columns: tuple[str, ...] = UTILITY_COLUMNS

    @property
    def scope(self) -> str:
        return self.biller

    def row(self, number: int, row: Fields) -> Theirs:
        ref = field(row, "utility_ref", number, _token, "a reference (1-64 characters)")
        key = field(row, "payment_id", number, _token, "a payment id (1-64 characters)")
        for name in ("account_no", "bill_ref"):
            field(row, name, number, _token, "1-64 characters")
        at = field(
            row, "written_off_at", number, lambda v: v.isascii() and v.isdigit(), "Unix seconds"
        )
        start, end = bounds(self.day)
        if not start <= int(at) < end:
            raise ScopeMismatch(
                f"written off at {at}, not on {self.day} (UTC): is this the right statement?",
                number,
            )
        return Theirs(number, key, amount(row, number), currency(row, number), ref)

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


_BANK_KINDS = {"debit": "payment", "reversal": "refund"}  # their kind → our posting kind


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
    columns: tuple[str, ...] = BANK_COLUMNS
    scope: str = ""

    def row(self, number: int, row: Fields) -> Theirs:
        ref = field(row, "debit_id", number, _token, "a debit id (1-64 characters)")
        key = field(row, "idempotency_key", number, _token, "a payment id (1-64 characters)")
        kind = field(row, "kind", number, lambda v: v in _BANK_KINDS, "debit or reversal")
        at = field(row, "at", number, _iso_time, "an ISO 8601 time")
        if datetime.fromisoformat(at).astimezone(UTC).date() != self.day:
            raise ScopeMismatch(
                f"dated {at}, not {self.day} (UTC): is this the right settlement file?", number
            )
        return Theirs(number, f"{kind}:{key}", amount(row, number), currency(row, number), ref)

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


def _iso_time(value: str) -> bool:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None
