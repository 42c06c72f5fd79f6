"""Outbox rows: enqueue, claim with a lease, mark delivered or failed. Every function runs inside
the caller's transaction and takes "now" from the caller, so a test can move time forward.

Claiming locks the rows it takes: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
dispatchers take different rows; on SQLite the write transaction (BEGIN IMMEDIATE) already
serializes them."""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gateway.db.models import OutboxMessage
from gateway.outbox.backoff import backoff

_MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    topic: str
    key: str
    payload: dict[str, Any]
    attempts: int  # including this one


def enqueue(session: Session, topic: str, key: str, payload: Mapping[str, Any], now: int) -> None:
    """Add a message unless (topic, key) is already queued: a state change that happens once
    queues its message once, even when its transaction is retried."""
    exists = session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.topic == topic, OutboxMessage.key == key)
    )
    if exists is not None:
        return
    session.add(
        OutboxMessage(
            topic=topic,
            key=key,
            payload=json.dumps(payload, ensure_ascii=False, sort_keys=True),
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )
    session.flush()


def claim(
    session: Session,
    worker: str,
    topics: Collection[str],
    now: int,
    lease: int,
    limit: int,
    skip: Collection[int] = (),
) -> list[Claimed]:
    """Take up to ``limit`` due, unclaimed (or lease-expired) messages of ``topics`` for
    ``worker`` until ``now + lease``. ``skip``: ids this worker already tried in this drain."""
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.topic.in_(list(topics)),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip:
        query = query.where(OutboxMessage.id.not_in(list(skip)))
    taken = []
    for row in session.scalars(query):
        row.claimed_by, row.claimed_until = worker, now + lease
        row.attempts += 1
        taken.append(Claimed(row.id, row.topic, row.key, json.loads(row.payload), row.attempts))
    return taken


def _held(session: Session, message_id: int, worker: str) -> OutboxMessage | None:
    """The row when ``worker`` still holds it undelivered (its lease may have run out, but no
    one else took it); None when another dispatcher took it over or it was delivered."""
    row = session.get(OutboxMessage, message_id, with_for_update=True)
    if row is None or row.delivered_at is not None or row.claimed_by != worker:
        return None
    return row


def mark_delivered(session: Session, message_id: int, worker: str, now: int) -> bool:
    row = _held(session, message_id, worker)
    if row is None:
        return False
    row.delivered_at, row.claimed_by, row.claimed_until, row.last_error = now, None, None, None
    return True


def mark_failed(
    session: Session, message_id: int, worker: str, now: int, error: str, rng: random.Random
) -> int | None:
    """Release the message for a later attempt; returns when it is due again (None when the
    worker no longer held it)."""
    row = _held(session, message_id, worker)
    if row is None:
        return None
    row.next_attempt_at = now + backoff(row.attempts, rng)
    row.claimed_by, row.claimed_until = None, None
    row.last_error = error[:_MAX_ERROR]
    return row.next_attempt_at


def pending(session: Session, topics: Collection[str] | None = None) -> int:
    """How many messages wait for delivery (all topics, or those given)."""
    query = (
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))
    )
    if topics is not None:
        query = query.where(OutboxMessage.topic.in_(list(topics)))
    return int(session.scalar(query) or 0)
