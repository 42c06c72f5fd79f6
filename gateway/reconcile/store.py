"""Running a reconciliation against the database: read the file and our records in a read
transaction, then write the report and apply its automatic resolutions in one write transaction.

A file that fails anywhere leaves nothing written. The same file (by SHA-256) for the same scope
and day is reconciled once: a second run returns the first report and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.engine import Database
from gateway.db.models import FundingSource, OutboxMessage, Payment, Reconciliation
from gateway.errors import NotFound
from gateway.ids import new_id
from gateway.mandates import queue_reversal
from gateway.reconcile.csvfile import CsvReader
from gateway.reconcile.rules import Matcher, Outcome
from gateway.reconcile.sources import Source
from gateway.writeoff import REVERSAL_TOPIC, TOPIC, UtilityAnswer, enqueue_writeoff, record_answer

RESENT = "re-sent by reconciliation"


def _reading(source: Source, stream: BinaryIO) -> Callable[[Session], tuple[Outcome, str]]:
    def work(session: Session) -> tuple[Outcome, str]:
        stream.seek(0)  # a retried read transaction reads the file from its start again
        reader = CsvReader(stream, source.columns)
        matcher = Matcher(
            source.ours(session),
            lambda keys: source.lookup(session, keys),
            source.scope,
            resend=lambda o: source.name == "utility" or o.key.startswith("reversal:"),
        )
        for number, row in reader:
            matcher.feed(source.row(number, row))
        return matcher.finish(), reader.sha256

    return work


def _resend(session: Session, topic: str, payment_id: str, at: int) -> bool:
    """Deliver the payment's message again: reset its outbox row, or queue it when there is none
    (a payment from before the outbox)."""
    row = session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.topic == topic, OutboxMessage.key == payment_id)
        .with_for_update()
    )
    if row is not None:
        row.delivered_at, row.claimed_by, row.claimed_until = None, None, None
        row.next_attempt_at, row.last_error = at, RESENT
        return True
    payment = session.get(Payment, payment_id)
    if payment is None:
        return False
    if topic == TOPIC:
        enqueue_writeoff(session, payment, at)
        return True
    source = session.get(FundingSource, payment.funding_source_id or "")
    if source is None or source.kind != "mandate":
        return False
    queue_reversal(session, payment, source)
    return True


def _apply(session: Session, source: Source, outcome: Outcome, at: int) -> int:
    done = 0
    for payment_id, ref in outcome.to_credit:
        answer = UtilityAnswer(status="credited", utility_ref=ref)
        done += record_answer(session, payment_id, answer, at) == "credited"
    topic = TOPIC if source.name == "utility" else REVERSAL_TOPIC
    for key in outcome.to_resend:
        done += _resend(session, topic, key.split(":", 1)[-1], at)
    return done


def view(row: Reconciliation, replayed: bool = False) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "scope": row.scope,
        "day": row.day,
        "file_name": row.file_name,
        "file_sha256": row.file_sha256,
        "lines": row.lines,
        "counts": json.loads(row.counts),
        "findings": json.loads(row.findings),
        "resolved": row.resolved,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "replayed": replayed,
    }


def reconcile(
    db: Database, source: Source, stream: BinaryIO, file_name: str, actor: str
) -> dict[str, Any]:
    """Reconcile the file in ``stream`` (opened in binary, seekable) and return the report."""
    outcome, sha256 = db.read(_reading(source, stream))
    day = str(source.day)

    def write(session: Session) -> dict[str, Any]:
        earlier = session.scalar(
            select(Reconciliation).where(
                Reconciliation.source == source.name,
                Reconciliation.scope == source.scope,
                Reconciliation.day == day,
                Reconciliation.file_sha256 == sha256,
            )
        )
        if earlier is not None:
            return view(earlier, replayed=True)
        at = now()
        row = Reconciliation(
            id=new_id("rec"),
            source=source.name,
            scope=source.scope,
            day=day,
            file_name=file_name[-200:],
            file_sha256=sha256,
            lines=outcome.lines,
            counts=json.dumps(outcome.counts),
            findings=json.dumps([asdict(f) for f in outcome.findings], ensure_ascii=False),
            resolved=_apply(session, source, outcome, at),
            created_at=at,
            created_by=actor,
        )
        session.add(row)
        session.flush()
        return view(row)

    return db.write(write)


def listing(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Reconciliation)
        .order_by(Reconciliation.created_at.desc(), Reconciliation.id)
        .limit(limit)
    )
    return [{k: v for k, v in view(r).items() if k != "findings"} for r in rows]


def get(session: Session, reconciliation_id: str) -> dict[str, Any]:
    row = session.get(Reconciliation, reconciliation_id)
    if row is None:
        raise NotFound(
            f"no reconciliation {reconciliation_id}; list them with GET "
            "/api/v1/staff/reconciliations",
            code="reconciliation_not_found",
        )
    return view(row)
