"""Staff credit a household's wallet with money received at a shop or by bank transfer.

Idempotent on the staff's reference (the shop receipt or bank transfer number): the same credit
sent again changes nothing and is not audited twice; the reference reused for another credit is
refused."""

from __future__ import annotations

import re
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.db.models import Household, LedgerTransfer
from gateway.errors import Conflict, NotFound, Unprocessable
from gateway.funding.sources import wallet_source
from gateway.ledger import Leg, PostingConflict, accounts, balance, post
from gateway.ledger.amounts import show

Channel = Literal["shop", "bank_transfer"]
# One credit above ¥50,000 is far beyond any household's bills: more likely a typing slip.
MAX_CREDIT_FEN = 5_000_000
_REFERENCE = re.compile(r"[A-Za-z0-9._:/-]{1,64}")


def _check(amount_fen: int, currency: str, reference: str) -> None:
    if not 0 < amount_fen <= MAX_CREDIT_FEN:
        raise Unprocessable(
            f"A wallet credit is between 1 fen and {show(MAX_CREDIT_FEN, 'CNY')}; check the "
            "amount (in fen: ¥12.00 is 1200).",
            code="amount_invalid",
        )
    if currency != "CNY":
        raise Unprocessable("Wallets hold CNY only.", code="currency_invalid")
    if not _REFERENCE.fullmatch(reference):
        raise Unprocessable(
            "The reference is the shop receipt or bank transfer number: 1-64 letters, digits "
            "or . _ : / -",
            code="reference_invalid",
        )


def credit_wallet(
    session: Session,
    actor: str,
    household_no: str,
    amount_fen: int,
    currency: str,
    reference: str,
    channel: Channel,
) -> dict[str, Any]:
    """Post TOPUPS → wallet(household) and audit it; answers the credit and the new balance."""
    _check(amount_fen, currency, reference)
    household = session.scalar(select(Household).where(Household.household_no == household_no))
    if household is None:
        raise NotFound(
            f"No household {household_no}; check the number on the household's contract.",
            code="household_not_found",
        )
    wallet_source(session, household.id)
    account = accounts.wallet(household_no)
    replayed = (
        session.scalar(
            select(LedgerTransfer.id).where(
                LedgerTransfer.kind == "topup", LedgerTransfer.ref == reference
            )
        )
        is not None
    )
    try:
        txn_id = post(
            session,
            kind="topup",
            ref=reference,
            currency=currency,
            legs=[Leg(accounts.TOPUPS, account, amount_fen)],
        )
    except PostingConflict:
        raise Conflict(
            f"Reference {reference} was already used for another credit; check the receipt "
            "number, each credit has its own.",
            code="reference_reused",
        ) from None
    if not replayed:
        audit.record(
            session,
            actor,
            "wallet_credit",
            household_no,
            amount_fen=amount_fen,
            currency=currency,
            reference=reference,
            channel=channel,
            txn_id=txn_id,
        )
    return {
        "household_no": household_no,
        "amount_fen": amount_fen,
        "currency": currency,
        "reference": reference,
        "channel": channel,
        "txn_id": txn_id,
        "balance_fen": balance(session, account),
        "replayed": replayed,
    }
