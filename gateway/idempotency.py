"""Idempotency keys with Stripe's semantics (docs/gateway.md §1.5).

The first answer for a key — success or business error — is stored in the same transaction as
the work it describes, and replayed for the same key and body. A different body is refused (422).
A second request arriving while the first is still running gets 409: within one process a
registry of keys in flight says so; across PostgreSQL workers a transaction-scoped advisory lock.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.models import IdempotencyKey
from gateway.errors import APIError, Conflict, Unprocessable


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: dict[str, Any]
    replayed: bool


def _in_progress() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry in a moment.",
        code="idempotency_request_in_progress",
    )


class InFlight:
    """Keys whose first request is still running."""

    def __init__(self, advisory_locks: bool) -> None:
        self._advisory = advisory_locks
        self._keys: set[tuple[int, str]] = set()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, scope: int, key: str) -> Iterator[None]:
        with self._lock:
            if (scope, key) in self._keys:
                raise _in_progress()
            self._keys.add((scope, key))
        try:
            yield
        finally:
            with self._lock:
                self._keys.discard((scope, key))

    def claim(self, session: Session, scope: int, key: str) -> None:
        """Across processes (PostgreSQL): an advisory lock released when the transaction ends."""
        if not self._advisory:
            return
        digest = hashlib.sha256(f"{scope}:{key}".encode()).digest()
        lock_id = int.from_bytes(digest[:8], "big", signed=True)
        if not session.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id}):
            raise _in_progress()


def make_in_flight(engine: Engine) -> InFlight:
    return InFlight(advisory_locks=engine.dialect.name == "postgresql")


def request_hash(path: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"path": path, "body": body}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_idempotent(
    session: Session,
    in_flight: InFlight,
    scope: int,
    key: str,
    req_hash: str,
    ttl_seconds: int,
    work: Callable[[Session], tuple[int, dict[str, Any]]],
) -> StoredAnswer:
    """Replay the stored answer for ``key`` or run ``work`` and store its answer (or its error)."""
    in_flight.claim(session, scope, key)
    stored = session.get(IdempotencyKey, (scope, key))
    if stored is not None and stored.created_at + ttl_seconds < now():
        session.delete(stored)
        session.flush()
        stored = None
    if stored is not None:
        if stored.request_hash != req_hash:
            raise Unprocessable(
                "This Idempotency-Key was already used with a different request; use a new key "
                "for a new payment.",
                code="idempotency_key_reused",
            )
        return StoredAnswer(stored.status_code, json.loads(stored.body), replayed=True)
    try:
        with session.begin_nested():
            status, body = work(session)
    except APIError as exc:
        status, body = exc.status, exc.body()
    session.add(
        IdempotencyKey(
            household_id=scope,
            key=key,
            request_hash=req_hash,
            status_code=status,
            body=json.dumps(body, ensure_ascii=False),
            created_at=now(),
        )
    )
    return StoredAnswer(status, body, replayed=False)
