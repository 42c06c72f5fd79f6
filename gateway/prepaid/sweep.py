"""冲正: card purchases still ``pending`` after their fulfilment window are refunded, unless the
card might hold them (docs/prepaid.md).

A purchase may be on the card, or on its way there, once a write-card block was handed out for
it and the card was not seen since: the box may have written it, and the meter would credit it
whatever the gateway decides. Reversing then could pay the household twice, so such a purchase
stays ``pending`` with ``needs_card`` set for staff. A purchase no block was issued for since
the card's last read (or ever), and that the last read did not show, cannot reach the meter:
its payment is refunded through the ordinary refund path and its fulfilment is ``reversed``.

Each purchase is settled in its own transaction under its row lock; a card session for the
same purchase waits for it and then sees the new state, so a block is never handed out for a
reversed purchase, and running the sweep again (or in several dispatchers) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.models import CardIssue, PrepaidMeter, Purchase
from gateway.db.models import CardRead as CardReadRow
from gateway.errors import ServiceUnavailable
from gateway.funding.refunds import refund_payment

log = logging.getLogger("tvpay.gateway.prepaid")

ACTOR = "sweep"  # the audit log's name for the reversal sweep
REASON = "card_not_written"

Outcome = Literal["reversed", "needs_card", "unchanged"]


@dataclass(slots=True)
class SweepReport:
    """What one sweep changed: purchases reversed, and purchases newly flagged for staff."""

    reversed: list[str] = field(default_factory=list)
    needs_card: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def overdue(session: Session, now: int) -> list[str]:
    """Card purchases still pending whose window has closed, oldest first."""
    return list(
        session.scalars(
            select(Purchase.id)
            .join(PrepaidMeter, Purchase.meter_id == PrepaidMeter.id)
            .where(
                PrepaidMeter.kind == "card",
                Purchase.fulfilment == "pending",
                Purchase.fulfil_by <= now,
            )
            .order_by(Purchase.fulfil_by, Purchase.id)
        )
    )


def _may_be_on_card(session: Session, purchase: Purchase) -> bool:
    assert purchase.card_count is not None  # a card purchase always knows its count
    last_read = session.execute(
        select(CardReadRow.read_at, CardReadRow.count)
        .where(CardReadRow.meter_id == purchase.meter_id)
        .order_by(CardReadRow.read_at.desc(), CardReadRow.id.desc())
        .limit(1)
    ).first()
    if last_read is not None and last_read.count >= purchase.card_count:
        return True  # the card was seen holding it; only the confirmation is missing
    issued = select(CardIssue.id).where(CardIssue.purchase_id == purchase.id)
    if last_read is not None:
        # Times are whole seconds: a block issued in the same second as the last read counts
        # as after it (a session logs its read, then issues), the side that never pays twice.
        issued = issued.where(CardIssue.issued_at >= last_read.read_at)
    return session.scalar(issued.limit(1)) is not None


def settle(session: Session, purchase_id: str, now: int) -> Outcome:
    """Reverse one overdue card purchase, or flag it ``needs_card``; re-checked under its lock."""
    purchase = session.get(Purchase, purchase_id, with_for_update=True)
    if (
        purchase is None
        or purchase.fulfilment != "pending"
        or purchase.fulfil_by is None
        or purchase.fulfil_by > now
    ):
        return "unchanged"
    if _may_be_on_card(session, purchase):
        if purchase.needs_card:
            return "unchanged"
        purchase.needs_card = True
        log.warning("event=card_purchase_needs_card purchase_id=%s", purchase.id)
        return "needs_card"
    # The ordinary refund path: money back to its source, audited, and the purchase reversed
    # with its bill void (gateway.prepaid.fulfilment), all in this transaction.
    refund_payment(session, ACTOR, purchase.payment_id, REASON)
    purchase.needs_card = False  # flagged by an earlier sweep, since shown without the block
    log.info(
        "event=card_purchase_reversed purchase_id=%s payment_id=%s",
        purchase.id,
        purchase.payment_id,
    )
    return "reversed"


def sweep(db: Database, now: int) -> SweepReport:
    """Settle every overdue card purchase, each in its own transaction. One that cannot be
    settled (say its payment is in a state a refund refuses) is logged, reported and left as it
    is."""
    report = SweepReport()
    for purchase_id in db.read(lambda s: overdue(s, now)):
        try:
            outcome = db.write(lambda s, pid=purchase_id: settle(s, pid, now))
        except ServiceUnavailable:
            raise  # the database is gone: nothing can be settled, the caller reports it
        except Exception:
            # One purchase's trouble must stop neither the others nor the dispatcher running
            # this; it is tried again at the next sweep.
            log.exception("event=card_purchase_reversal_failed purchase_id=%s", purchase_id)
            report.failed.append(purchase_id)
            continue
        if outcome == "reversed":
            report.reversed.append(purchase_id)
        elif outcome == "needs_card":
            report.needs_card.append(purchase_id)
    return report
