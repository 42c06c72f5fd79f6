"""The payment journal on the box: each payment's steps, in SQLite in the state directory.

Why it exists: the dongle's signature is the money. Once a payment is signed it must reach the
gateway even if the box loses power or the network right after, and it must never be signed a
second time as a different payment. So the journal records the idempotency key before the
payment is created (a lost answer is retried with the same key), the payment's fields before
signing (a retry reuses the same payment id, which the dongle answers with the same signature),
and the signed authorization before it is sent (it is resubmitted at start and when the network
returns). A bill with an open entry never gets a second payment.

States only move forward:
    intent -> created -> signing -> signed -> succeeded | refused
    intent | created | signing -> abandoned | refused
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OPEN_STATES = ("intent", "created", "signing", "signed")
TERMINAL_STATES = ("succeeded", "refused", "abandoned")
_RANK = {"intent": 0, "created": 1, "signing": 2, "signed": 3}
_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "created": ("intent",),
    "signing": ("created", "signing"),
    "signed": ("signing",),
    "succeeded": ("signed",),
    "refused": OPEN_STATES,
    # A signed authorization is money already promised: it is never abandoned, only resent.
    "abandoned": ("intent", "created", "signing"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    local_id        TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    bill_id         TEXT NOT NULL,
    amount_fen      INTEGER NOT NULL CHECK (amount_fen > 0),
    currency        TEXT NOT NULL,
    payment_id      TEXT UNIQUE,
    sign_fields     TEXT,
    expires_at      TEXT,
    authorization   TEXT,
    receipt         TEXT,
    reason          TEXT,
    state           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_payment_per_bill
    ON payments (bill_id) WHERE state IN ('intent', 'created', 'signing', 'signed');
CREATE TABLE IF NOT EXISTS steps (
    local_id TEXT NOT NULL REFERENCES payments (local_id),
    state    TEXT NOT NULL,
    at       TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
"""


class JournalError(Exception):
    """Base of the journal's errors."""


class JournalTransitionError(JournalError):
    """A payment's recorded state would move backwards or skip a step (a bug, not bad luck)."""


class BillAlreadyInProgress(JournalError):
    """The bill already has an open payment: finish that one instead of starting another."""


class JournalCorrupt(JournalError):
    """The journal file cannot be read; it is kept for inspection."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"the payment journal {path} is unreadable ({reason}); move it aside and contact "
            "telecom support before paying again, it may hold a signed payment"
        )


@dataclass(frozen=True, slots=True)
class JournalEntry:
    local_id: str
    idempotency_key: str
    bill_id: str
    amount_fen: int
    currency: str
    state: str
    payment_id: str | None
    sign_fields: dict[str, Any] | None
    expires_at: str | None
    authorization: dict[str, Any] | None
    receipt: dict[str, Any] | None
    reason: str | None
    created_at: str
    updated_at: str

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


class Journal:
    """Thread-safe: the app's worker threads record steps while the UI thread reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Created 0600 before SQLite touches it: it holds signed authorizations.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives power loss; NORMAL could lose a just-signed payment.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalCorrupt(path, str(exc)) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading ---------------------------------------------------------------------------

    def get(self, local_id: str) -> JournalEntry:
        entry = self._one("SELECT * FROM payments WHERE local_id = ?", (local_id,))
        if entry is None:
            raise JournalError(f"no journal entry {local_id}")
        return entry

    def open_for_bill(self, bill_id: str) -> JournalEntry | None:
        """The bill's payment in progress, if any: it must be finished, not replaced."""
        placeholders = ",".join("?" * len(OPEN_STATES))
        return self._one(
            f"SELECT * FROM payments WHERE bill_id = ? AND state IN ({placeholders})",
            (bill_id, *OPEN_STATES),
        )

    def unconfirmed(self) -> list[JournalEntry]:
        """Signed authorizations the gateway has not confirmed yet: to be resubmitted."""
        return self._all("SELECT * FROM payments WHERE state = 'signed' ORDER BY created_at")

    def entries(self, limit: int = 100) -> list[JournalEntry]:
        return self._all(
            "SELECT * FROM payments ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
        )

    def steps(self, local_id: str) -> list[tuple[str, str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, at, detail FROM steps WHERE local_id = ? ORDER BY rowid",
                (local_id,),
            ).fetchall()
        return [tuple(r) for r in rows]

    # -- recording -------------------------------------------------------------------------

    def begin(self, bill_id: str, amount_fen: int, currency: str) -> JournalEntry:
        """Record the intent to pay a bill, with the idempotency key the gateway will see."""
        local_id = str(uuid.uuid4())
        now = _now()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO payments (local_id, idempotency_key, bill_id, amount_fen,"
                    " currency, state, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 'intent', ?, ?)",
                    (local_id, str(uuid.uuid4()), bill_id, amount_fen, currency, now, now),
                )
                self._db.execute(
                    "INSERT INTO steps (local_id, state, at) VALUES (?, 'intent', ?)",
                    (local_id, now),
                )
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                raise BillAlreadyInProgress(
                    f"bill {bill_id} already has a payment in progress; finish that one"
                ) from None
        return self.get(local_id)

    def record_created(
        self, local_id: str, payment_id: str, sign_fields: dict[str, Any], expires_at: str
    ) -> JournalEntry:
        return self._advance(
            local_id,
            "created",
            payment_id=payment_id,
            sign_fields=json.dumps(sign_fields),
            expires_at=expires_at,
        )

    def record_signing(self, local_id: str) -> JournalEntry:
        return self._advance(local_id, "signing")

    def record_signed(self, local_id: str, authorization: dict[str, Any]) -> JournalEntry:
        return self._advance(local_id, "signed", authorization=json.dumps(authorization))

    def record_succeeded(self, local_id: str, receipt: dict[str, Any]) -> JournalEntry:
        return self._advance(local_id, "succeeded", receipt=json.dumps(receipt))

    def record_refused(self, local_id: str, reason: str) -> JournalEntry:
        return self._advance(local_id, "refused", reason=reason, detail=reason)

    def record_abandoned(self, local_id: str, reason: str) -> JournalEntry:
        return self._advance(local_id, "abandoned", reason=reason, detail=reason)

    def _advance(self, local_id: str, state: str, detail: str = "", **columns: str) -> JournalEntry:
        now = _now()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT state FROM payments WHERE local_id = ?", (local_id,)
                ).fetchone()
                if row is None:
                    raise JournalError(f"no journal entry {local_id}")
                if row[0] not in _ALLOWED_FROM[state]:
                    raise JournalTransitionError(
                        f"payment {local_id} cannot go from {row[0]} to {state}"
                    )
                self._db.execute(
                    f"UPDATE payments SET state = ?, updated_at = ?"
                    f"{', ' + assignments if assignments else ''} WHERE local_id = ?",
                    (state, now, *columns.values(), local_id),
                )
                self._db.execute(
                    "INSERT INTO steps (local_id, state, at, detail) VALUES (?, ?, ?, ?)",
                    (local_id, state, now, detail),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(local_id)

    def _one(self, sql: str, params: tuple = ()) -> JournalEntry | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _all(self, sql: str, params: tuple = ()) -> list[JournalEntry]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        return [
            JournalEntry(
                local_id=r["local_id"],
                idempotency_key=r["idempotency_key"],
                bill_id=r["bill_id"],
                amount_fen=r["amount_fen"],
                currency=r["currency"],
                state=r["state"],
                payment_id=r["payment_id"],
                sign_fields=_load(r["sign_fields"]),
                expires_at=r["expires_at"],
                authorization=_load(r["authorization"]),
                receipt=_load(r["receipt"]),
                reason=r["reason"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]
