"""Direct-debit mandates (代扣协议): staff bind a household's bank card with a per-payment and a
monthly limit, or revoke it; a payment from a mandate is refused before the PIN when it would
pass either limit, and checked again when it is authorized (two payments created under the limit
must not both be taken over it). Every staff action is audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gateway import audit
from gateway.clock import iso, now
from gateway.db.models import PAYMENT_TAKEN_SQL, FundingSource, Household, Mandate, Payment
from gateway.errors import Conflict, NotFound, Unprocessable
from gateway.funding.sources import wallet_source
from gateway.ids import new_id
from gateway.ledger.amounts import show
from gateway.outbox import enqueue
from gateway.registry import find_household

# The bank's card token and the card as printed for people: at most the first six and the last
# four digits show, as card schemes allow on receipts.
BANK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CARD_MASKED = re.compile(r"[0-9]{0,6}\*{4,9}[0-9]{4}")
# A mandate limit above ¥100,000 is no household's bill: more likely a typing slip (fen vs yuan).
MAX_LIMIT_FEN = 10_000_000


def _check_terms(
    bank_token: str, card_masked: str, per_payment_fen: int, monthly_fen: int, currency: str
) -> None:
    if not BANK_TOKEN.fullmatch(bank_token):
        raise Unprocessable(
            "The bank token is the 1-64 letters, digits, _ or - the bank gave for the card.",
            code="bank_token_invalid",
        )
    if not CARD_MASKED.fullmatch(card_masked):
        raise Unprocessable(
            "Give the card number masked, e.g. 622202******1234: at most the first 6 and the "
            "last 4 digits, the rest as *.",
            code="card_masked_invalid",
        )
    for limit in (per_payment_fen, monthly_fen):
        if not 0 < limit <= MAX_LIMIT_FEN:
            raise Unprocessable(
                f"Each limit is between 1 fen and {show(MAX_LIMIT_FEN, 'CNY')}; check the "
                "amounts (in fen: ¥500.00 is 50000).",
                code="limit_invalid",
            )
    if per_payment_fen > monthly_fen:
        raise Unprocessable(
            "The per-payment limit is above the monthly limit; lower it or raise the monthly one.",
            code="limit_invalid",
        )
    if currency != "CNY":
        raise Unprocessable("Mandates debit CNY cards only.", code="currency_invalid")


def _month_start(t: int) -> int:
    day = datetime.fromtimestamp(t, UTC)
    return int(day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def spent_this_month(session: Session, source_id: str, t: int) -> int:
    """What payments from this source took or are taking since the 1st of the month (UTC)."""
    spent = session.scalar(
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
            Payment.funding_source_id == source_id,
            Payment.created_at >= _month_start(t),
            text(PAYMENT_TAKEN_SQL),
        )
    )
    return int(spent or 0)


def _view(mandate: Mandate, source: FundingSource, spent: int) -> dict[str, Any]:
    return {
        "mandate_id": mandate.id,
        "funding_source_id": source.id,
        "card_masked": mandate.card_masked,
        "per_payment_limit_fen": mandate.per_payment_limit_fen,
        "monthly_limit_fen": mandate.monthly_limit_fen,
        "spent_this_month_fen": spent,
        "currency": mandate.currency,
        "status": mandate.status,
        "created_at": iso(mandate.created_at),
    }


def _source(session: Session, mandate: Mandate) -> FundingSource:
    source = session.scalar(select(FundingSource).where(FundingSource.mandate_id == mandate.id))
    assert source is not None  # made with the mandate, in the same transaction
    return source


def bind_mandate(
    session: Session,
    actor: str,
    household_no: str,
    bank_token: str,
    card_masked: str,
    per_payment_limit_fen: int,
    monthly_limit_fen: int,
    currency: str = "CNY",
) -> dict[str, Any]:
    """Record a mandate the household signed at its bank, as a new (non-default) funding source."""
    _check_terms(bank_token, card_masked, per_payment_limit_fen, monthly_limit_fen, currency)
    household = find_household(session, household_no)
    wallet_source(session, household.id)  # the wallet stays the default until the household picks
    t = now()
    mandate = Mandate(
        id=new_id("mnd"),
        household_id=household.id,
        card_masked=card_masked,
        bank_token=bank_token,
        per_payment_limit_fen=per_payment_limit_fen,
        monthly_limit_fen=monthly_limit_fen,
        currency=currency,
        status="active",
        created_at=t,
    )
    session.add(mandate)
    session.flush()  # the source refers to it; no ORM relationship orders the inserts
    source = FundingSource(
        id=new_id("fs"),
        household_id=household.id,
        kind="mandate",
        is_default=False,
        mandate_id=mandate.id,
        created_at=t,
    )
    session.add(source)
    session.flush()
    audit.record(
        session,
        actor,
        "mandate_bind",
        household_no,
        mandate_id=mandate.id,
        card_masked=card_masked,
        per_payment_limit_fen=per_payment_limit_fen,
        monthly_limit_fen=monthly_limit_fen,
    )
    return _view(mandate, source, 0)


def _find(session: Session, mandate_id: str, lock: bool = False) -> Mandate:
    mandate = session.get(Mandate, mandate_id, with_for_update=lock)
    if mandate is None:
        raise NotFound(
            f"No mandate {mandate_id}; list a household's mandates to find its id.",
            code="mandate_not_found",
        )
    return mandate


def revoke_mandate(session: Session, actor: str, mandate_id: str, reason: str) -> dict[str, Any]:
    """Stop new payments from the mandate; payments already at the bank still finish. If it was
    the household's default, the wallet becomes the default."""
    mandate = _find(session, mandate_id, lock=True)
    source = _source(session, mandate)
    if mandate.status != "revoked":
        mandate.status = "revoked"
        if source.is_default:
            source.is_default = False
            session.flush()  # one default per household at every statement (partial index)
            wallet_source(session, mandate.household_id).is_default = True
        household = session.get(Household, mandate.household_id)
        assert household is not None  # foreign key
        audit.record(
            session,
            actor,
            "mandate_revoke",
            household.household_no,
            mandate_id=mandate.id,
            reason=reason,
        )
    return _view(mandate, source, spent_this_month(session, source.id, now()))


def list_mandates(session: Session, household_no: str) -> list[dict[str, Any]]:
    household = find_household(session, household_no)
    mandates = session.scalars(
        select(Mandate)
        .where(Mandate.household_id == household.id)
        .order_by(Mandate.created_at, Mandate.id)
    )
    t = now()
    views = []
    for mandate in mandates:
        source = _source(session, mandate)
        views.append(_view(mandate, source, spent_this_month(session, source.id, t)))
    return views


def mandate_of(session: Session, source: FundingSource, lock: bool = False) -> Mandate:
    assert source.kind == "mandate" and source.mandate_id is not None
    return _find(session, source.mandate_id, lock=lock)


def check_limits(
    session: Session, source: FundingSource, amount_fen: int, currency: str, *, lock: bool
) -> Mandate:
    """Refuse a payment the mandate does not allow: revoked, another currency, or over a limit.

    With ``lock`` the mandate row is locked first, so concurrent authorizations on PostgreSQL
    count each other's payments (SQLite serializes every writer anyway)."""
    mandate = mandate_of(session, source, lock=lock)
    if mandate.status != "active":
        raise Conflict(
            f"The bank card {mandate.card_masked} is no longer set up for direct debit; choose "
            "another way to pay, or ask the telecom shop to set the card up again.",
            code="mandate_revoked",
        )
    if currency != mandate.currency:
        raise Conflict(
            f"The card is debited in {mandate.currency} and this bill is in {currency}: choose "
            "another way to pay.",
            code="currency_mismatch",
        )
    if amount_fen > mandate.per_payment_limit_fen:
        raise Conflict(
            f"This bill ({show(amount_fen, currency)}) is over the card's limit of "
            f"{show(mandate.per_payment_limit_fen, currency)} per payment: pay it from the "
            "wallet, or ask the telecom shop to raise the limit.",
            code="mandate_limit_exceeded",
        )
    spent = spent_this_month(session, source.id, now())
    if spent + amount_fen > mandate.monthly_limit_fen:
        left = max(mandate.monthly_limit_fen - spent, 0)
        raise Conflict(
            f"This bill ({show(amount_fen, currency)}) would pass the card's monthly limit of "
            f"{show(mandate.monthly_limit_fen, currency)} ({show(left, currency)} left this "
            "month): pay it from the wallet, wait for next month, or ask the telecom shop to "
            "raise the limit.",
            code="mandate_limit_exceeded",
        )
    return mandate


def queue_reversal(session: Session, payment: Payment, source: FundingSource) -> None:
    """Queue the bank reversal of a refunded mandate payment, in the refund's transaction; once
    per payment however many refund paths ask (the outbox keeps one message per key)."""
    from gateway.writeoff import REVERSAL_TOPIC  # writeoff → funding.take → here: import late

    payload = {
        "payment_id": payment.id,
        "mandate_id": source.mandate_id,
        "amount_fen": payment.amount_fen,
        "currency": payment.currency,
    }
    enqueue(session, REVERSAL_TOPIC, payment.id, payload, now())
