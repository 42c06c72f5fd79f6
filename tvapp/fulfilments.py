"""The box's journal of purchase fulfilments (买电): what is left to do after a purchase is paid.

Why it exists: a paid purchase is money taken for electricity the meter does not have yet. The
card meter's credit is written by this box onto the household's card, and the token meter's
credit is 20 digits the household types; both must survive the box losing power, the card being
pulled out, or the household pressing Back. So each step's outcome is recorded here, durably,
before the next step that cannot be undone: the write-card block before it is run on the card,
the card's read-back before the gateway is told the card is written, the token before it is
shown. After a restart the app offers 补写卡 for every paid purchase not yet written.

The payment itself is in the payment journal (tvapp/journal.py), as every payment is; this one
keeps the purchase. The gateway remains the authority: a purchase it reports done or reversed is
closed here too. States only move forward:

    created -> paid -> writing -> written -> done
    created -> dropped            (the payment never went through)
    paid | writing | written -> reversed   (refunded: never written within the window)
    paid -> written | done        (the card already shows it; a token or a remote meter)
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("tvapp.fulfilments")

FILE_NAME = "fulfilments.sqlite3"
OPEN_STATES = ("paid", "writing", "written")  # paid, and the meter not credited yet
_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "paid": ("created",),
    "writing": ("paid", "writing"),  # a card pulled out mid-block is written again: 补写卡
    "written": ("paid", "writing"),
    "done": ("created", "paid", "writing", "written"),
    "dropped": ("created",),
    "reversed": OPEN_STATES,
}
_RANK = {"created": 0, "paid": 1, "writing": 2, "written": 3}
TERMINAL = ("done", "dropped", "reversed")


def _already(current: str, target: str) -> bool:
    """Whether a purchase in ``current`` has already been through ``target``. A new write-card
    block (``writing`` again) is a new step; two different ends are a conflict, not a repeat."""
    if target == current:
        return target != "writing"
    if target in TERMINAL:
        return False
    return current in TERMINAL or _RANK[current] > _RANK[target]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS fulfilments (
    purchase_id TEXT PRIMARY KEY,
    payment_id  TEXT NOT NULL UNIQUE,
    meter_id    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('remote', 'card', 'token')),
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    currency    TEXT NOT NULL,
    energy_wh   INTEGER NOT NULL CHECK (energy_wh >= 0),
    state       TEXT NOT NULL,
    token       TEXT,
    card_count  INTEGER,
    block       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fulfilment_steps (
    purchase_id TEXT NOT NULL REFERENCES fulfilments (purchase_id),
    state       TEXT NOT NULL,
    at          TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
"""


class FulfilmentError(Exception):
    """Base of the fulfilment journal's errors."""


class FulfilmentTransitionError(FulfilmentError):
    """A purchase's recorded state would move backwards (a bug, not bad luck)."""


class TokenChanged(FulfilmentError):
    """The gateway answered another token than the one recorded: the recorded one stands."""

    def __init__(self, purchase_id: str) -> None:
        super().__init__(
            f"the gateway sent another token for purchase {purchase_id}; the one first shown is "
            "kept. Contact telecom support"
        )
        self.purchase_id = purchase_id


@dataclass(frozen=True, slots=True)
class Fulfilment:
    purchase_id: str
    payment_id: str
    meter_id: str
    kind: str
    amount_fen: int
    currency: str
    energy_wh: int
    state: str
    token: str | None
    card_count: int | None
    block: tuple[bytes, ...]  # the write-card block last received, as it is run
    created_at: str
    updated_at: str

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _entry(row: sqlite3.Row) -> Fulfilment:
    block = tuple(bytes.fromhex(a) for a in json.loads(row["block"])) if row["block"] else ()
    return Fulfilment(
        row["purchase_id"],
        row["payment_id"],
        row["meter_id"],
        row["kind"],
        row["amount_fen"],
        row["currency"],
        row["energy_wh"],
        row["state"],
        row["token"],
        row["card_count"],
        block,
        row["created_at"],
        row["updated_at"],
    )


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        # Created 0600 before SQLite touches it, as the payment journal is.
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")  # a recorded step survives power loss
    db.executescript(_SCHEMA)
    if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        db.close()
        raise sqlite3.DatabaseError("quick_check failed")
    return db


class FulfilmentJournal:
    """Thread-safe (worker threads record, the UI thread reads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = _connect(path)
        except sqlite3.DatabaseError as exc:
            # Kept aside for staff, never deleted; the gateway still knows every purchase that
            # is pending, so 补写卡 is offered from its meter list.
            aside = path.with_name(f"{path.name}.damaged-{_now()}")
            path.replace(aside)
            log.warning("event=fulfilments_damaged kept=%s error=%s", aside, exc)
            self._db = _connect(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading ---------------------------------------------------------------------------

    def get(self, purchase_id: str) -> Fulfilment | None:
        rows = self._select("WHERE purchase_id = ?", (purchase_id,))
        return rows[0] if rows else None

    def by_payment(self, payment_id: str) -> Fulfilment | None:
        rows = self._select("WHERE payment_id = ?", (payment_id,))
        return rows[0] if rows else None

    def unfinished(self) -> list[Fulfilment]:
        """Purchases made or paid on this box whose meter is not credited yet, oldest first."""
        return self._select("WHERE state IN ('created', 'paid', 'writing', 'written')")

    def tokens(self, limit: int = 10) -> list[Fulfilment]:
        """Token purchases with their token, newest first (the token history)."""
        return self._select(
            "WHERE token IS NOT NULL ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
        )

    def _select(self, where: str, params: tuple = ()) -> list[Fulfilment]:
        order = "" if "ORDER BY" in where else " ORDER BY created_at, rowid"
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM fulfilments {where}{order}", params)
            return [_entry(r) for r in rows.fetchall()]

    # -- recording -------------------------------------------------------------------------

    def record_created(
        self,
        purchase_id: str,
        payment_id: str,
        meter_id: str,
        kind: str,
        amount_fen: int,
        currency: str,
        energy_wh: int,
    ) -> Fulfilment:
        """A purchase the gateway made (not paid yet); recording it again changes nothing."""
        now = _now()
        made = (purchase_id, payment_id, meter_id, kind, amount_fen, currency, energy_wh)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                inserted = self._db.execute(
                    "INSERT INTO fulfilments (purchase_id, payment_id, meter_id, kind, amount_fen,"
                    " currency, energy_wh, state, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'created', ?, ?) ON CONFLICT DO NOTHING",
                    (*made, now, now),
                ).rowcount
                if inserted:
                    self._step(purchase_id, "created", now, "")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self._existing(purchase_id)

    def record_paid(self, purchase_id: str) -> Fulfilment:
        return self._advance(purchase_id, "paid")

    def record_block(self, purchase_id: str, card_count: int, block: tuple[bytes, ...]) -> None:
        """The write-card block, recorded before it is run on the card."""
        blob = json.dumps([apdu.hex() for apdu in block])
        self._advance(
            purchase_id, "writing", f"count {card_count}", card_count=card_count, block=blob
        )

    def record_written(self, purchase_id: str, card_count: int) -> Fulfilment:
        """The card read back shows the purchase: recorded before the gateway is told."""
        return self._advance(purchase_id, "written", f"count {card_count}", card_count=card_count)

    def record_token(self, purchase_id: str, token: str) -> Fulfilment:
        """The token, recorded before it is shown; a token recorded before is never replaced."""
        entry = self.get(purchase_id)
        if entry is not None and entry.token is not None:
            if entry.token != token:
                raise TokenChanged(purchase_id)
            return entry
        return self._advance(purchase_id, "done", "token issued", token=token)

    def record_done(self, purchase_id: str, detail: str = "") -> Fulfilment:
        return self._advance(purchase_id, "done", detail)

    def record_dropped(self, purchase_id: str, detail: str) -> Fulfilment:
        return self._advance(purchase_id, "dropped", detail)

    def record_reversed(self, purchase_id: str) -> Fulfilment:
        return self._advance(purchase_id, "reversed", "refunded by the utility")

    def _advance(
        self, purchase_id: str, state: str, detail: str = "", **columns: int | str
    ) -> Fulfilment:
        now = _now()
        assignments = "".join(f", {name} = ?" for name in columns)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT state FROM fulfilments WHERE purchase_id = ?", (purchase_id,)
                ).fetchone()
                if row is None:
                    raise FulfilmentError(f"no fulfilment recorded for purchase {purchase_id}")
                if _already(row["state"], state):
                    # Recorded first by the other worker thread (the sync with the gateway
                    # runs beside the card writer): the step happened once, nothing to add.
                    self._db.execute("COMMIT")
                    return self._existing(purchase_id)
                if row["state"] not in _ALLOWED_FROM[state]:
                    raise FulfilmentTransitionError(
                        f"purchase {purchase_id} cannot go from {row['state']} to {state}"
                    )
                self._db.execute(
                    f"UPDATE fulfilments SET state = ?, updated_at = ?{assignments}"
                    " WHERE purchase_id = ?",
                    (state, now, *columns.values(), purchase_id),
                )
                self._step(purchase_id, state, now, detail)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self._existing(purchase_id)

    def _existing(self, purchase_id: str) -> Fulfilment:
        entry = self.get(purchase_id)
        assert entry is not None
        return entry

    def _step(self, purchase_id: str, state: str, now: str, detail: str) -> None:
        self._db.execute(
            "INSERT INTO fulfilment_steps (purchase_id, state, at, detail) VALUES (?, ?, ?, ?)",
            (purchase_id, state, now, detail),
        )
