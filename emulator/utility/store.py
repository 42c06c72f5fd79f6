"""The utility's own database (SQLite in its state directory): accounts, bills, write-offs and
prepaid (远程费控) accounts with the credits their purchases put on them.

A write-off is keyed by the gateway's payment id, so a notification that arrives twice is answered
twice with the same record and the bill is written off once — unless the ``ack_twice`` fault makes
this utility's idempotency broken: then a repeat is written off again under a new reference (a
row of ``duplicate_writeoffs``, on the statement too, and a second credit on a prepaid balance).
Accounts and bills the utility was never told about are taken as open and unpaid: the simulator
only needs to know the exceptions (closed accounts, bills paid at the counter, amounts it
expects). A purchase for a remote meter is the exception: its account must be seeded prepaid.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from emulator.utility.prepaid import Credit, PrepaidAccount, Reading, day_of, read

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
CREATE TABLE IF NOT EXISTS duplicate_writeoffs (
    utility_ref TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES writeoffs (payment_id),
    written_off_at INTEGER NOT NULL,
    written_off_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prepaid_accounts (
    account_no TEXT PRIMARY KEY,
    opening_fen INTEGER NOT NULL,
    currency TEXT NOT NULL,
    daily_use_wh INTEGER NOT NULL,
    price_milli_fen_per_kwh INTEGER NOT NULL,
    overdraft_fen INTEGER NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prepaid_credits (
    utility_ref TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL,
    account_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS prepaid_credits_account ON prepaid_credits (account_no, at);
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
    meter_kind: str | None = None  # a purchase's meter: "remote", "card" or "token"; None: a bill


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

    def account_status(self, account_no: str) -> str | None:
        """'open' or 'closed' when the utility was told; None when it never heard of it."""
        with self._lock:
            row = self._db.execute(
                "SELECT status FROM accounts WHERE account_no = ?", (account_no,)
            ).fetchone()
        return row[0] if row else None

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

    def set_prepaid(self, account: PrepaidAccount) -> None:
        """Seed (or re-seed) a prepaid account: its balance at the start of ``since`` is the
        opening balance; purchases from then on still count."""
        with self._lock:
            self._db.execute(
                "INSERT INTO prepaid_accounts VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account_no) DO UPDATE SET opening_fen = excluded.opening_fen, "
                "currency = excluded.currency, daily_use_wh = excluded.daily_use_wh, "
                "price_milli_fen_per_kwh = excluded.price_milli_fen_per_kwh, "
                "overdraft_fen = excluded.overdraft_fen, since = excluded.since",
                (
                    account.account_no,
                    account.opening_fen,
                    account.currency,
                    account.daily_use_wh,
                    account.price_milli_fen_per_kwh,
                    account.overdraft_fen,
                    account.since.isoformat(),
                ),
            )

    def prepaid(self, account_no: str, now: int) -> tuple[PrepaidAccount, Reading] | None:
        """The prepaid account and its reading at ``now``; None when it is not prepaid here."""
        with self._lock:
            account = self._prepaid_account(account_no)
            if account is None:
                return None
            return account, read(account, self._credits(account_no), now)

    def prepaid_balances(self, now: int) -> dict[str, dict[str, Any]]:
        with self._lock:
            numbers = [r[0] for r in self._db.execute("SELECT account_no FROM prepaid_accounts")]
            found = {n: self._prepaid_account(n) for n in numbers}
            return {
                n: {
                    "balance_fen": read(a, self._credits(n), now).balance_fen,
                    "currency": a.currency,
                }
                for n, a in found.items()
                if a is not None
            }

    def _prepaid_account(self, account_no: str) -> PrepaidAccount | None:
        row = self._db.execute(
            "SELECT account_no, opening_fen, currency, daily_use_wh, price_milli_fen_per_kwh, "
            "overdraft_fen, since FROM prepaid_accounts WHERE account_no = ?",
            (account_no,),
        ).fetchone()
        if row is None:
            return None
        return PrepaidAccount(*row[:6], since=date.fromisoformat(row[6]))

    def _credits(self, account_no: str) -> list[Credit]:
        rows = self._db.execute(
            "SELECT at, amount_fen FROM prepaid_credits WHERE account_no = ?", (account_no,)
        )
        return [Credit(at, amount) for at, amount in rows]

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

    def write_off(
        self,
        note: Notification,
        now: int,
        forced: str | None,
        duplicate: bool = False,
    ) -> Writeoff:
        """Write the bill off (or credit the purchase) once per payment id; a repeat returns the
        first answer, or with ``duplicate`` (a credited payment only) a new write-off.

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
                    answer = existing
                    if duplicate and existing.status == "credited":
                        answer = self._write_off_again(existing, now)
                    self._db.execute("COMMIT")
                    return answer
                reason = forced or self._refusal(note)
                status = "rejected" if reason else "credited"
                ref = None if reason else _new_ref(now)
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
                        day_of(now).isoformat(),
                    ),
                )
                if ref is not None and note.meter_kind == "remote":
                    self._credit(ref, note.payment_id, note.account_no, note.amount_fen, now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return Writeoff(note.payment_id, status, ref, reason, 1)

    def _write_off_again(self, first: Writeoff, now: int) -> Writeoff:
        """What a utility without idempotency does with a repeat: a second write-off, and for a
        prepaid purchase a second credit on the balance."""
        ref = _new_ref(now)
        self._db.execute(
            "INSERT INTO duplicate_writeoffs VALUES (?, ?, ?, ?)",
            (ref, first.payment_id, now, day_of(now).isoformat()),
        )
        credit = self._db.execute(
            "SELECT account_no, amount_fen FROM prepaid_credits WHERE payment_id = ?",
            (first.payment_id,),
        ).fetchone()
        if credit is not None:
            self._credit(ref, first.payment_id, credit[0], credit[1], now)
        return Writeoff(first.payment_id, "credited", ref, None, first.notifications + 1)

    def _credit(self, ref: str, payment_id: str, account_no: str, amount: int, now: int) -> None:
        self._db.execute(
            "INSERT INTO prepaid_credits VALUES (?, ?, ?, ?, ?)",
            (ref, payment_id, account_no, amount, now),
        )

    def _refusal(self, note: Notification) -> str | None:
        account = self._db.execute(
            "SELECT status FROM accounts WHERE account_no = ?", (note.account_no,)
        ).fetchone()
        if account and account[0] == "closed":
            return "account_closed"
        if note.meter_kind is not None:
            return self._purchase_refusal(note, known=account is not None)
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

    def _purchase_refusal(self, note: Notification, known: bool) -> str | None:
        """A card or token meter holds its own balance: the utility only records the sale. A
        remote meter's balance is kept here, so its account must be prepaid."""
        if note.meter_kind != "remote":
            return None
        prepaid = self._prepaid_account(note.account_no)
        if prepaid is None:
            has_bills = self._db.execute(
                "SELECT 1 FROM bills WHERE account_no = ?", (note.account_no,)
            ).fetchone()
            return "not_prepaid" if known or has_bills else "account_unknown"
        return "amount_mismatch" if prepaid.currency != note.currency else None

    def statement(self, day: str) -> list[tuple[Any, ...]]:
        """The day's write-offs, a duplicate one (``ack_twice``) as a line of its own."""
        columns = ", ".join(STATEMENT_COLUMNS)
        again = ", ".join(
            f"d.{c}" if c in ("utility_ref", "written_off_at") else f"w.{c}"
            for c in STATEMENT_COLUMNS
        )
        with self._lock:
            return self._db.execute(
                f"SELECT {columns} FROM writeoffs WHERE status = 'credited' "
                "AND written_off_date = ? "
                f"UNION ALL SELECT {again} FROM duplicate_writeoffs d "
                "JOIN writeoffs w ON w.payment_id = d.payment_id WHERE d.written_off_date = ? "
                "ORDER BY written_off_at, utility_ref",
                (day, day),
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

    def duplicates(self) -> int:
        """Write-offs made again for a payment already written off (``ack_twice``)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM duplicate_writeoffs").fetchone()[0]


def _new_ref(now: int) -> str:
    return "UT" + day_of(now).strftime("%Y%m%d") + secrets.token_hex(5)
