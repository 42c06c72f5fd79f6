"""A household's funding sources: every household has a wallet (made on first use), mandates are
added by staff; one source is the default a payment uses when it names none."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.models import FundingSource, Household, Mandate, Payment
from gateway.errors import Conflict, NotFound
from gateway.ids import new_id
from gateway.ledger import accounts, balance, currency_of


def wallet_account(session: Session, household_id: int) -> str:
    """The ledger account of the household's wallet."""
    household = session.get(Household, household_id)
    assert household is not None  # callers pass the id of an authenticated household
    return accounts.wallet(household.household_no)


def wallet_source(session: Session, household_id: int) -> FundingSource:
    """The household's wallet source, created on first use (and made the default if none is).

    Two first uses at once both insert; the partial unique index refuses the second and the
    gateway runs its transaction again, when it finds the first one's row."""
    source = session.scalar(
        select(FundingSource).where(
            FundingSource.household_id == household_id, FundingSource.kind == "wallet"
        )
    )
    if source is None:
        has_default = session.scalar(
            select(FundingSource.id).where(
                FundingSource.household_id == household_id, FundingSource.is_default
            )
        )
        source = FundingSource(
            id=new_id("fund"),
            household_id=household_id,
            kind="wallet",
            is_default=has_default is None,
            created_at=now(),
        )
        session.add(source)
        session.flush()
    return source


def _not_found() -> NotFound:
    return NotFound(
        "No such funding source for this household; list them with GET /api/v1/funding-sources.",
        code="funding_source_not_found",
    )


def find_source(session: Session, household_id: int, source_id: str | None) -> FundingSource:
    """The source a payment uses: ``source_id`` if it is the household's, else the default."""
    wallet = wallet_source(session, household_id)
    if source_id is None:
        default = session.scalar(
            select(FundingSource).where(
                FundingSource.household_id == household_id, FundingSource.is_default
            )
        )
        return default or wallet
    source = session.get(FundingSource, source_id)
    if source is None or source.household_id != household_id:
        raise _not_found()
    return source


def wallet_currency(session: Session, account: str) -> str:
    """The wallet's currency: its ledger account's, CNY before the first top-up."""
    return currency_of(session, account) or "CNY"


def _view(session: Session, source: FundingSource) -> dict[str, Any]:
    view: dict[str, Any] = {"id": source.id, "kind": source.kind, "is_default": source.is_default}
    if source.kind == "wallet":
        account = wallet_account(session, source.household_id)
        view["balance_fen"] = balance(session, account)
        view["currency"] = wallet_currency(session, account)
    else:
        mandate = session.get(Mandate, source.mandate_id)
        assert mandate is not None  # foreign key; a mandate source always names one
        view["mandate"] = {
            "card_masked": mandate.card_masked,
            "per_payment_limit_fen": mandate.per_payment_limit_fen,
            "monthly_limit_fen": mandate.monthly_limit_fen,
            "currency": mandate.currency,
            "status": mandate.status,
        }
    return view


def list_sources(session: Session, household_id: int) -> dict[str, Any]:
    """The household's sources, wallet first, with the wallet's balance."""
    wallet_source(session, household_id)
    sources = session.scalars(
        select(FundingSource)
        .where(FundingSource.household_id == household_id)
        .order_by(FundingSource.kind != "wallet", FundingSource.created_at, FundingSource.id)
    )
    return {"funding_sources": [_view(session, s) for s in sources]}


def set_default(session: Session, household_id: int, source_id: str) -> dict[str, Any]:
    """Make ``source_id`` the household's default; answers the new list."""
    chosen = find_source(session, household_id, source_id)
    if chosen.kind == "mandate":
        mandate = session.get(Mandate, chosen.mandate_id)
        assert mandate is not None  # foreign key
        if mandate.status != "active":
            raise Conflict(
                f"The bank card {mandate.card_masked} is no longer set up for direct debit; "
                "choose another source, or ask the telecom shop to set the card up again.",
                code="mandate_revoked",
            )
    current = session.scalars(
        select(FundingSource).where(
            FundingSource.household_id == household_id, FundingSource.is_default
        )
    ).all()
    for source in current:
        source.is_default = False
    # The old default is cleared in the database before the new one is set: the partial unique
    # index allows one default per household at every statement, not only at commit.
    session.flush()
    chosen.is_default = True
    session.flush()
    return list_sources(session, household_id)


def source_of(session: Session, payment: Payment) -> FundingSource:
    """The source a payment pays from. A payment created before the ledger named none: it pays
    from the household's default, and remembers it."""
    if payment.funding_source_id is None:
        source = find_source(session, payment.household_id, None)
        payment.funding_source_id = source.id
        return source
    source = session.get(FundingSource, payment.funding_source_id)
    assert source is not None  # foreign key
    return source
