"""Settlement (清算): pay each utility, on the next day (T+1), what the gateway collected for it.

For ``day`` and each biller: due = what its payable received up to the end of ``day`` (UTC)
from payments and refunds − everything settled to it so far, never more than what the payable
holds now. It is posted payable(biller) → external:settlements with the ref
``stl:<day>:<biller>``, so a second run for the same day finds the first posting and pays
nothing more."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from gateway.db.models import LedgerAccount, LedgerTransfer
from gateway.ledger import Leg, balance, post
from gateway.ledger.accounts import PAYABLE_PREFIX, SETTLEMENTS, payable
from gateway.ledger.rules import MAX_REF
from gateway.reconcile.days import bounds

KIND = "settlement"


@dataclass(frozen=True, slots=True)
class Settlement:
    biller: str
    day: str
    amount_fen: int
    currency: str
    status: str  # "settled" now, "already" settled before, "nothing" due
    ref: str
    txn_id: str | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def settlement_ref(day: date, biller: str) -> str:
    ref = f"stl:{day}:{biller}"
    # A ledger ref holds 64 characters; a longer biller code is named by its digest instead.
    return (
        ref
        if len(ref) <= MAX_REF
        else f"stl:{day}:{hashlib.sha256(biller.encode()).hexdigest()[:40]}"
    )


def _signed(account: str) -> ColumnElement[int]:
    """+ credit, − debit of ``account``, per transfer."""
    return case(
        (LedgerTransfer.credit_account == account, LedgerTransfer.amount_fen), else_=0
    ) - case((LedgerTransfer.debit_account == account, LedgerTransfer.amount_fen), else_=0)


def _sum(session: Session, account: str, *where: object) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(_signed(account)), 0)).where(
            (LedgerTransfer.credit_account == account) | (LedgerTransfer.debit_account == account),
            *where,
        )
    )
    return int(total or 0)


def _one(session: Session, biller: str, currency: str, day: date) -> Settlement:
    account, ref = payable(biller), settlement_ref(day, biller)
    posted = session.scalar(
        select(LedgerTransfer).where(LedgerTransfer.kind == KIND, LedgerTransfer.ref == ref)
    )
    if posted is not None:
        return Settlement(
            biller, str(day), posted.amount_fen, currency, "already", ref, posted.txn_id
        )
    _, end = bounds(day)
    collected = _sum(session, account, LedgerTransfer.kind != KIND, LedgerTransfer.created_at < end)
    settled = -_sum(session, account, LedgerTransfer.kind == KIND)
    due = min(collected - settled, balance(session, account))
    if due <= 0:
        return Settlement(biller, str(day), 0, currency, "nothing", ref, None)
    txn = post(
        session, kind=KIND, ref=ref, currency=currency, legs=[Leg(account, SETTLEMENTS, due)]
    )
    return Settlement(biller, str(day), due, currency, "settled", ref, txn)


def settle(session: Session, day: date) -> list[Settlement]:
    """Settle every biller's payable for ``day``, in biller order, in the caller's transaction."""
    accounts = session.execute(
        select(LedgerAccount.code, LedgerAccount.currency)
        .where(LedgerAccount.code.startswith(PAYABLE_PREFIX))
        .order_by(LedgerAccount.code)
    ).all()
    return [
        _one(session, code.removeprefix(PAYABLE_PREFIX), currency, day)
        for code, currency in accounts
    ]
