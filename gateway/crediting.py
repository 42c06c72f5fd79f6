"""查询到账: the household asks whether the utility has written its bill off. The gateway asks the
utility now (outside any database transaction), answers what it said, and applies the answer to
the payment when it is news (the same rules as the dispatcher's, gateway.writeoff)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.engine import Database
from gateway.db.models import Biller, Payment
from gateway.dispatch.utility import DeliveryError, ask
from gateway.errors import Conflict, NotFound, ServiceUnavailable
from gateway.household import get_payment
from gateway.writeoff import record_answer

ASK_TIMEOUT = 5.0  # seconds: the household is waiting in front of the TV
_SAYS = {"credited": "credited", "rejected": "rejected", "unknown": "not_yet"}


def _target(session: Session, household_id: int, payment_id: str) -> str:
    row = session.execute(
        select(Payment.status, Biller.notify_url)
        .join(Biller, Payment.biller_code == Biller.code)
        .where(Payment.id == payment_id, Payment.household_id == household_id)
    ).first()
    if row is None:
        raise NotFound("No such payment for this household.", code="payment_not_found")
    status, url = row
    if status not in ("succeeded", "credited", "refunded"):
        raise Conflict(
            f"This payment is {status}: it took no money, so the utility has nothing to write off.",
            code="payment_not_taken",
        )
    if not url:
        raise ServiceUnavailable(
            "This utility cannot be asked directly yet; the payment shows 已到账 once the "
            "utility confirms it.",
            code="utility_not_connected",
        )
    return url


def crediting_check(db: Database, household_id: int, payment_id: str) -> dict[str, Any]:
    url = db.read(lambda s: _target(s, household_id, payment_id))
    try:
        answer = ask(url, payment_id, ASK_TIMEOUT)
    except DeliveryError:
        raise ServiceUnavailable(
            "The utility did not answer just now; try again in a few minutes.",
            code="utility_unreachable",
        ) from None

    def apply(s: Session) -> dict[str, Any]:
        record_answer(s, payment_id, answer, now())
        return get_payment(s, household_id, payment_id)

    payment = db.write(apply)
    return {
        "payment_id": payment_id,
        "utility_says": _SAYS[answer.status],
        "utility_ref": answer.utility_ref,
        "reason": answer.reason,
        "payment": payment,
    }
