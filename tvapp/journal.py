"""The payment journal on the box: each payment's steps, in SQLite in the state directory.

Why it exists: the dongle's signature is the money. Once a payment is signed it must reach the
gateway even if the box loses power or the network right after, and it must never be signed a
second time as a different payment. So the journal records the idempotency key before the
payment is created (a lost answer is retried with the same key), the payment's fields before
signing (a retry reuses the same payment id, which the dongle answers with the same signature),
and the signed authorization before it is sent (it is resubmitted at start and when the network
returns). A bill with an open entry never gets a second payment.

Damage is found when the journal is opened, never at the first payment: the file must be a
TVPay journal (SQLite header, ``application_id``), pass ``PRAGMA quick_check``, every payment row
must match its own SHA-256 checksum (SQLite checks its structure, not what a flipped bit in a
stored authorization says), and a real write transaction must commit. A journal is created
under a temporary name and renamed into place once its schema is durable, so an empty or
half-made file under the journal's name is always damage, never a first start.

States only move forward:
    intent -> created -> signing -> signed -> succeeded | refused
    intent | created | signing -> abandoned | refused
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from dataclasses import astuple, dataclass
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

# "TVPY": tells a TVPay journal from any other SQLite file.
APPLICATION_ID = 0x54565059
SCHEMA_VERSION = 2  # 1: no checksum column, no meta table (migrated when opened)
# The payment columns a checksum covers, in table order; ``checksum`` is the last column.
COLUMNS = (
    "local_id",
    "idempotency_key",
    "bill_id",
    "amount_fen",
    "currency",
    "payment_id",
    "sign_fields",
    "expires_at",
    "authorization",
    "receipt",
    "reason",
    "state",
    "created_at",
    "updated_at",
)
# Steps that lead to a signature: refused by a journal that cannot keep what it records.
_NEEDS_DURABLE = ("intent", "created", "signing")

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
    updated_at      TEXT NOT NULL,
    checksum        TEXT
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
# Written by the start-up check's write transaction: proves the journal writable.
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class JournalError(Exception):
    """Base of the journal's errors."""


class JournalTransitionError(JournalError):
    """A payment's recorded state would move backwards or skip a step (a bug, not bad luck)."""


class BillAlreadyInProgress(JournalError):
    """The bill already has an open payment: finish that one instead of starting another."""


class JournalCorrupt(JournalError):
    """The journal file is not a whole, intact journal; ``reason`` says what is wrong."""

    def __init__(self, path: Path, reason: str) -> None:
        reason = " ".join(reason.split())  # SQLite's reports span lines: keep log lines whole
        super().__init__(f"the payment journal {path} is damaged: {reason}")
        self.path = path
        self.reason = reason


class JournalUnwritable(JournalError):
    """The journal can be read but nothing can be recorded in it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"the payment journal {path} cannot be written: {reason}")
        self.path = path
        self.reason = reason


class PayingPaused(JournalError):
    """This box cannot keep payment records, so no new payment may be signed on it."""

    def __init__(self) -> None:
        super().__init__(
            "this box cannot save payment records, so paying is paused; payments already "
            "signed are still sent. Contact telecom staff"
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


def row_checksum(values: Iterable[Any]) -> str:
    """SHA-256 of a payment row's stored values (``COLUMNS`` order), hex."""
    canonical = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_from_row(row: dict[str, Any]) -> JournalEntry:
    """A stored payment row as an entry; raises ValueError if its JSON columns are not JSON."""
    return JournalEntry(
        local_id=row["local_id"],
        idempotency_key=row["idempotency_key"],
        bill_id=row["bill_id"],
        amount_fen=row["amount_fen"],
        currency=row["currency"],
        state=row["state"],
        payment_id=row["payment_id"],
        sign_fields=_load(row["sign_fields"]),
        expires_at=row["expires_at"],
        authorization=_load(row["authorization"]),
        receipt=_load(row["receipt"]),
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _stored(entry: JournalEntry) -> tuple[Any, ...]:
    """An entry as its row's values, in ``COLUMNS`` order."""
    dumped = {
        name: None if value is None else json.dumps(value)
        for name, value in (
            ("sign_fields", entry.sign_fields),
            ("authorization", entry.authorization),
            ("receipt", entry.receipt),
        )
    }
    values = dict(zip(_ENTRY_FIELDS, astuple(entry), strict=True)) | dumped
    return tuple(values[name] for name in COLUMNS)


def _error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` survive power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Thread-safe: the app's worker threads record steps while the UI thread reads.

    ``Journal(path)`` opens the journal at ``path`` (created if there is none) and checks it
    whole; ``Journal.stand_in(entries)`` keeps entries in memory only, for a box whose journal
    cannot be written: it sends what was already signed but refuses to start new payments.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.durable = True
        self._lock = threading.Lock()
        if not path.exists() and not path.is_symlink():
            create_journal(path, ())
        self._db = _open_checked(path)

    @classmethod
    def stand_in(cls, entries: Iterable[JournalEntry]) -> Journal:
        journal = cls.__new__(cls)
        journal.path = Path(":memory:")
        journal.durable = False
        journal._lock = threading.Lock()
        journal._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        journal._db.executescript(_SCHEMA)
        _restore(journal._db, entries, "kept in memory: the journal cannot be written")
        return journal

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

    def highest_counter(self) -> int:
        """The highest dongle signature counter of any authorization recorded here (0: none)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT authorization FROM payments WHERE authorization IS NOT NULL"
            ).fetchall()
        counters = [json.loads(r[0]).get("counter") for r in rows]
        return max((c for c in counters if isinstance(c, int)), default=0)

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
        if not self.durable:
            raise PayingPaused()
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
                _seal(self._db, local_id)
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
        if state in _NEEDS_DURABLE and not self.durable:
            raise PayingPaused()
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
                _seal(self._db, local_id)
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
        return [entry_from_row(r) for r in rows]


_ENTRY_FIELDS = tuple(JournalEntry.__dataclass_fields__)


def _seal(db: sqlite3.Connection, local_id: str) -> None:
    """Store the row's checksum, inside the transaction that changed the row."""
    row = db.execute(
        f"SELECT {', '.join(COLUMNS)} FROM payments WHERE local_id = ?", (local_id,)
    ).fetchone()
    db.execute("UPDATE payments SET checksum = ? WHERE local_id = ?", (row_checksum(row), local_id))


def _restore(db: sqlite3.Connection, entries: Iterable[JournalEntry], detail: str) -> None:
    """Insert recovered entries as they were, each with a step saying where it came from."""
    now = _now()
    db.execute("BEGIN IMMEDIATE")
    for entry in entries:
        values = _stored(entry)
        db.execute(
            f"INSERT INTO payments ({', '.join(COLUMNS)}, checksum)"
            f" VALUES ({', '.join('?' * len(COLUMNS))}, ?)",
            (*values, row_checksum(values)),
        )
        db.execute(
            "INSERT INTO steps (local_id, state, at, detail) VALUES (?, ?, ?, ?)",
            (entry.local_id, entry.state, now, detail),
        )
    db.execute("COMMIT")


def create_journal(path: Path, entries: Iterable[JournalEntry], detail: str = "") -> None:
    """Make a journal at ``path`` holding ``entries``: built under a temporary name, made
    durable, then renamed into place, so ``path`` is either absent or a whole journal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".new")
    for stale in (building, *(building.with_name(building.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    # Created 0600 before SQLite touches it: it holds signed authorizations.
    os.close(os.open(building, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    db = sqlite3.connect(building, isolation_level=None)
    try:
        db.execute("PRAGMA page_size = 4096")
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(_SCHEMA)
        db.execute(_META)
        _restore(db, entries, detail)
    finally:
        db.close()  # the last connection checkpoints the WAL into the file and removes it
    with open(building, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(building, path)
    fsync_dir(path.parent)


def _open_checked(path: Path) -> sqlite3.Connection:
    """Open the journal and prove it whole and writable; JournalCorrupt / JournalUnwritable."""
    if not path.is_file():
        raise JournalCorrupt(path, "it is not a regular file")
    if path.stat().st_size == 0:
        raise JournalCorrupt(path, "the file is empty")
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise JournalCorrupt(path, str(exc)) from None
    try:
        _check(db, path)
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit survives power loss; NORMAL could lose a just-signed payment.
        db.execute("PRAGMA synchronous = FULL")
        # A real write transaction: a read-only file, mount or directory fails here, at start,
        # not at the household's first payment.
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)", (_now(),))
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        db.close()
        if _error_name(exc) in ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM"):
            raise JournalUnwritable(path, str(exc)) from None
        raise JournalCorrupt(path, str(exc)) from None
    except JournalError:
        db.close()
        raise
    return db


def _check(db: sqlite3.Connection, path: Path) -> None:
    """Header, SQLite's structure check, schema version and each row's checksum."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    problems = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise JournalCorrupt(path, "; ".join(problems[:3]))
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    if (application_id, version) == (0, 0) and "payments" in tables:
        _migrate_v1(db)
    elif (application_id, version) != (APPLICATION_ID, SCHEMA_VERSION) or "meta" not in tables:
        raise JournalCorrupt(path, "it is not a TVPay payment journal")
    for row in db.execute(f"SELECT {', '.join(COLUMNS)}, checksum FROM payments"):
        if row[-1] != row_checksum(row[:-1]):
            raise JournalCorrupt(path, f"payment record {row[0]!r} fails its checksum")


def _migrate_v1(db: sqlite3.Connection) -> None:
    """A journal from before checksums: it passed quick_check, so its rows are sealed as read."""
    db.execute("BEGIN IMMEDIATE")
    db.execute("ALTER TABLE payments ADD COLUMN checksum TEXT")
    db.execute(_META)
    for (local_id,) in db.execute("SELECT local_id FROM payments").fetchall():
        _seal(db, local_id)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("COMMIT")
