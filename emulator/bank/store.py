"""The bank's books in SQLite: card accounts and debits, each debit keyed by the caller's
idempotency key. Every change runs in one ``BEGIN IMMEDIATE`` transaction, so concurrent requests
with one key debit once and a balance never goes below zero."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.bank.errors import (
    CurrencyMismatch,
    KeyReused,
    NoSuchDebit,
    NothingToReverse,
    StateDirError,
    UnknownAccount,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    bank_token TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    balance_fen INTEGER NOT NULL CHECK (balance_fen >= 0)
);
CREATE TABLE IF NOT EXISTS debits (
    idempotency_key TEXT PRIMARY KEY,
    debit_id TEXT NOT NULL UNIQUE,
    bank_token TEXT NOT NULL REFERENCES accounts (bank_token),
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'insufficient')),
    created_at TEXT NOT NULL,
    reversed_at TEXT
);
"""

SETTLEMENT_COLUMNS = ("debit_id", "idempotency_key", "kind", "amount_fen", "currency", "at")


@dataclass(frozen=True, slots=True)
class Debit:
    debit_id: str
    idempotency_key: str
    bank_token: str
    amount_fen: int
    currency: str
    status: str  # "ok" (money taken) or "insufficient" (nothing taken): the first answer
    created_at: str
    reversed_at: str | None

    def view(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _debit(row: sqlite3.Row) -> Debit:
    return Debit(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (sqlite3.Row)


class BankStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path)
            try:
                db.executescript(SCHEMA)  # commits by itself; idempotent (IF NOT EXISTS)
            finally:
                db.close()
        except (OSError, sqlite3.Error) as exc:
            raise StateDirError(
                f"cannot open the bank database {path} ({exc}); pass a writable --state-dir"
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def put_account(self, bank_token: str, balance_fen: int, currency: str) -> dict[str, Any]:
        """Create a card account or set its balance (the control endpoint and the seed file)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO accounts (bank_token, currency, balance_fen) VALUES (?, ?, ?) "
                "ON CONFLICT (bank_token) DO UPDATE SET "
                "currency = excluded.currency, balance_fen = excluded.balance_fen",
                (bank_token, currency, balance_fen),
            )
        return {"bank_token": bank_token, "balance_fen": balance_fen, "currency": currency}

    def debit(self, key: str, bank_token: str, amount_fen: int, currency: str) -> Debit:
        """Take ``amount_fen`` once per key; a repeat gets the first answer and takes nothing."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM debits WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                first = _debit(row)
                if (first.bank_token, first.amount_fen, first.currency) != (
                    bank_token,
                    amount_fen,
                    currency,
                ):
                    raise KeyReused(
                        f"idempotency key {key!r} was used for another debit; use a new key for "
                        "a new debit"
                    )
                return first
            account = db.execute(
                "SELECT * FROM accounts WHERE bank_token = ?", (bank_token,)
            ).fetchone()
            if account is None:
                raise UnknownAccount(
                    "no card account for this bank token; the mandate may be cancelled at the "
                    "bank: ask the household to sign it again"
                )
            if account["currency"] != currency:
                raise CurrencyMismatch(
                    f"the card account holds {account['currency']}; debit it in that currency"
                )
            status = "ok" if account["balance_fen"] >= amount_fen else "insufficient"
            if status == "ok":
                db.execute(
                    "UPDATE accounts SET balance_fen = balance_fen - ? WHERE bank_token = ?",
                    (amount_fen, bank_token),
                )
            debit = Debit(
                "dbt_" + uuid.uuid4().hex,
                key,
                bank_token,
                amount_fen,
                currency,
                status,
                _now(),
                None,
            )
            db.execute(
                "INSERT INTO debits VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    debit.debit_id,
                    bank_token,
                    amount_fen,
                    currency,
                    status,
                    debit.created_at,
                    None,
                ),
            )
            return debit

    def get_debit(self, key: str) -> Debit:
        with self._transaction() as db:
            row = db.execute("SELECT * FROM debits WHERE idempotency_key = ?", (key,)).fetchone()
        if row is None:
            raise NoSuchDebit(f"the bank has no debit with idempotency key {key!r}")
        return _debit(row)

    def reverse(self, key: str) -> Debit:
        """Give a taken debit back in full, once; a repeat answers the same reversal."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM debits WHERE idempotency_key = ?", (key,)).fetchone()
            if row is None:
                raise NoSuchDebit(f"the bank has no debit with idempotency key {key!r}")
            debit = _debit(row)
            if debit.status != "ok":
                raise NothingToReverse(
                    "this debit took nothing (the card had too little); there is nothing to give "
                    "back"
                )
            if debit.reversed_at is not None:
                return debit
            at = _now()
            db.execute("UPDATE debits SET reversed_at = ? WHERE idempotency_key = ?", (at, key))
            db.execute(
                "UPDATE accounts SET balance_fen = balance_fen + ? WHERE bank_token = ?",
                (debit.amount_fen, debit.bank_token),
            )
            return Debit(**{**debit.view(), "reversed_at": at})

    def settlement(self, day: str) -> list[dict[str, Any]]:
        """The day's money movements (UTC): each taken debit, and each reversal, by time."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT debit_id, idempotency_key, 'debit' AS kind, amount_fen, currency, "
                "created_at AS at FROM debits WHERE status = 'ok' AND substr(created_at, 1, 10) = ? "
                "UNION ALL "
                "SELECT debit_id, idempotency_key, 'reversal', amount_fen, currency, reversed_at "
                "FROM debits WHERE substr(reversed_at, 1, 10) = ? ORDER BY at, kind",
                (day, day),
            ).fetchall()
        return [dict(row) for row in rows]

    def state(self) -> dict[str, Any]:
        with self._transaction() as db:
            accounts = db.execute("SELECT * FROM accounts ORDER BY bank_token").fetchall()
            debits = db.execute("SELECT * FROM debits ORDER BY created_at").fetchall()
        return {
            "accounts": [dict(row) for row in accounts],
            "debits": [_debit(row).view() for row in debits],
        }
