"""The utility's own database (SQLite in its state directory): accounts, bills and write-offs.

A write-off is keyed by the gateway's payment id, so a notification that arrives twice is answered
twice with the same record and the bill is written off once. Accounts and bills the utility was
never told about are taken as open and unpaid: the simulator only needs to know the exceptions
(closed accounts, bills paid at the counter, amounts it expects).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_no TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed'))
);
CREATE TABLE IF NOT EXISTS bills (
    bill_ref TEXT NOT NULL,
    account_no TEXT NOT NULL,
    amount_fen INTEGER,
    currency TEXT,
    status TEXT NOT NULL CHECK (status IN ('unpaid', 'paid_elsewhere')),
    PRIMARY KEY (account_no, bill_ref)
);
CREATE TABLE IF NOT EXISTS writeoffs (
    payment_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('credited', 'rejected')),
    utility_ref TEXT UNIQUE,
    reason TEXT,
    biller TEXT NOT NULL,
    account_no TEXT NOT NULL,
    bill_ref TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    currency TEXT NOT NULL,
    paid_at TEXT NOT NULL,
    written_off_at INTEGER NOT NULL,
    written_off_date TEXT NOT NULL,
    notifications INTEGER NOT NULL DEFAULT 1
);
"""

STATEMENT_COLUMNS = (
    "utility_ref",
    "payment_id",
    "account_no",
    "bill_ref",
    "amount_fen",
    "currency",
    "written_off_at",
)


@dataclass(frozen=True, slots=True)
class Notification:
    payment_id: str
    biller: str
    account_no: str
    bill_ref: str
    amount_fen: int
    currency: str
    paid_at: str


@dataclass(frozen=True, slots=True)
class Writeoff:
    payment_id: str
    status: str  # "credited" | "rejected"
    utility_ref: str | None
    reason: str | None
    notifications: int  # how many times the gateway sent this payment

    def answer(self) -> dict[str, Any]:
        body: dict[str, Any] = {"payment_id": self.payment_id, "status": self.status}
        if self.status == "credited":
            body["utility_ref"] = self.utility_ref
        else:
            body["reason"] = self.reason
        return body


class UtilityStore:
    """One connection guarded by a lock: the simulator's load is a test's, not a city's."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            state_dir / "utility.db", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def set_account(self, account_no: str, status: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO accounts VALUES (?, ?) "
                "ON CONFLICT (account_no) DO UPDATE SET status = excluded.status",
                (account_no, status),
            )

    def set_bill(
        self,
        account_no: str,
        bill_ref: str,
        status: str,
        amount_fen: int | None,
        currency: str | None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO bills VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_no, bill_ref) "
                "DO UPDATE SET status = excluded.status, amount_fen = excluded.amount_fen, "
                "currency = excluded.currency",
                (bill_ref, account_no, amount_fen, currency, status),
            )

    def find(self, payment_id: str) -> Writeoff | None:
        with self._lock:
            return self._find(payment_id)

    def _find(self, payment_id: str) -> Writeoff | None:
        row = self._db.execute(
            "SELECT payment_id, status, utility_ref, reason, notifications FROM writeoffs "
            "WHERE payment_id = ?",
            (payment_id,),
        ).fetchone()
        return Writeoff(*row) if row else None

    def write_off(self, note: Notification, now: int, date: str, forced: str | None) -> Writeoff:
        """Write the bill off once per payment id; a repeat returns the first answer.

        ``forced`` is a rejection reason injected by a fault, applied only to a new payment.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                existing = self._find(note.payment_id)
                if existing is not None:
                    self._db.execute(
                        "UPDATE writeoffs SET notifications = notifications + 1 "
                        "WHERE payment_id = ?",
                        (note.payment_id,),
                    )
                    self._db.execute("COMMIT")
                    return existing
                reason = forced or self._refusal(note)
                status = "rejected" if reason else "credited"
                ref = None if reason else "UT" + date.replace("-", "") + secrets.token_hex(5)
                self._db.execute(
                    "INSERT INTO writeoffs (payment_id, status, utility_ref, reason, biller, "
                    "account_no, bill_ref, amount_fen, currency, paid_at, written_off_at, "
                    "written_off_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        note.payment_id,
                        status,
                        ref,
                        reason,
                        note.biller,
                        note.account_no,
                        note.bill_ref,
                        note.amount_fen,
                        note.currency,
                        note.paid_at,
                        now,
                        date,
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return Writeoff(note.payment_id, status, ref, reason, 1)

    def _refusal(self, note: Notification) -> str | None:
        account = self._db.execute(
            "SELECT status FROM accounts WHERE account_no = ?", (note.account_no,)
        ).fetchone()
        if account and account[0] == "closed":
            return "account_closed"
        bill = self._db.execute(
            "SELECT status, amount_fen, currency FROM bills WHERE account_no = ? AND bill_ref = ?",
            (note.account_no, note.bill_ref),
        ).fetchone()
        if bill is not None and bill[0] == "paid_elsewhere":
            return "bill_paid_elsewhere"
        if (
            bill is not None
            and bill[1] is not None
            and (bill[1], bill[2])
            != (
                note.amount_fen,
                note.currency,
            )
        ):
            return "amount_mismatch"
        paid = self._db.execute(
            "SELECT 1 FROM writeoffs WHERE account_no = ? AND bill_ref = ? AND status = 'credited'",
            (note.account_no, note.bill_ref),
        ).fetchone()
        return "bill_paid_elsewhere" if paid else None

    def statement(self, date: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(
                f"SELECT {', '.join(STATEMENT_COLUMNS)} FROM writeoffs "
                "WHERE status = 'credited' AND written_off_date = ? ORDER BY written_off_at, "
                "utility_ref",
                (date,),
            ).fetchall()

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT status, COUNT(*), SUM(notifications) FROM writeoffs GROUP BY status"
            ).fetchall()
        counts = {"credited": 0, "rejected": 0, "notifications": 0}
        for status, count, notes in rows:
            counts[status] = count
            counts["notifications"] += notes
        return counts
