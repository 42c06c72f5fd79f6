"""The ledger in the database: post transfers and read balances inside the caller's transaction.

Wallet rows are locked (SELECT … FOR UPDATE, in code order) before their balance is read, so two
payments racing for the last yuan of one wallet are serialized on PostgreSQL; on SQLite every
writer is already serialized by BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.models import LedgerAccount, LedgerTransfer
from gateway.ids import new_id
from gateway.ledger import accounts
from gateway.ledger.rules import (
    CurrencyMismatch,
    Leg,
    PostingConflict,
    digest,
    shortfall,
    validate,
    wallets_debited,
)


def balance(session: Session, account: str) -> int:
    """Credits − debits of ``account`` in fen (0 for an account never used)."""
    signed = case(
        (LedgerTransfer.credit_account == account, LedgerTransfer.amount_fen), else_=0
    ) - case((LedgerTransfer.debit_account == account, LedgerTransfer.amount_fen), else_=0)
    total = session.scalar(
        select(func.coalesce(func.sum(signed), 0)).where(
            or_(LedgerTransfer.credit_account == account, LedgerTransfer.debit_account == account)
        )
    )
    return int(total or 0)


def currency_of(session: Session, account: str) -> str | None:
    """The currency ``account`` holds; None before its first posting."""
    return session.scalar(select(LedgerAccount.currency).where(LedgerAccount.code == account))


def _ensure_accounts(session: Session, codes: set[str], currency: str) -> None:
    found = {
        row.code: row
        for row in session.scalars(select(LedgerAccount).where(LedgerAccount.code.in_(codes)))
    }
    for code in sorted(codes):
        row = found.get(code)
        if row is None:
            # A concurrent first use inserts the same code: the loser's transaction fails on the
            # primary key and the gateway runs it again, when it finds the winner's row.
            session.add(
                LedgerAccount(
                    code=code, kind=accounts.kind_of(code), currency=currency, created_at=now()
                )
            )
        elif row.currency != currency:
            raise CurrencyMismatch(f"{code} holds {row.currency}, not {currency}")
    session.flush()


def _lock(session: Session, codes: list[str]) -> None:
    if codes:
        session.execute(
            select(LedgerAccount.code)
            .where(LedgerAccount.code.in_(codes))
            .order_by(LedgerAccount.code)
            .with_for_update()
        ).all()


def _already_posted(session: Session, kind: str, ref: str, legs: Sequence[Leg]) -> str | None:
    rows = session.scalars(
        select(LedgerTransfer).where(LedgerTransfer.kind == kind, LedgerTransfer.ref == ref)
    ).all()
    if not rows:
        return None
    posted = {(r.debit_account, r.credit_account, r.amount_fen) for r in rows}
    wanted = {(leg.debit, leg.credit, leg.amount_fen) for leg in legs}
    if posted != wanted:
        raise PostingConflict(
            f"{kind} {ref} was already posted with other legs; post a correction instead"
        )
    return rows[0].txn_id


def post(session: Session, *, kind: str, ref: str, currency: str, legs: Sequence[Leg]) -> str:
    """Post ``legs`` as one transaction and return its txn id.

    The same (kind, ref, legs) posted again returns the first txn id and writes nothing. Raises
    InsufficientFunds when a wallet would go below zero, PostingConflict when (kind, ref) was
    posted with other legs, CurrencyMismatch, InvalidPosting; nothing is written then."""
    validate(kind, ref, currency, legs)
    codes = {leg.debit for leg in legs} | {leg.credit for leg in legs}
    _ensure_accounts(session, codes, currency)
    debited = wallets_debited(legs)
    _lock(session, debited)
    existing = _already_posted(session, kind, ref, legs)
    if existing is not None:
        return existing
    refused = shortfall({code: balance(session, code) for code in debited}, legs)
    if refused is not None:
        raise refused
    txn_id, t = new_id("txn"), now()
    for leg in legs:
        fields = {
            "txn_id": txn_id,
            "kind": kind,
            "ref": ref,
            "amount_fen": leg.amount_fen,
            "currency": currency,
            "created_at": t,
        }
        session.add(
            LedgerTransfer(
                debit_account=leg.debit,
                credit_account=leg.credit,
                digest=digest(debit=leg.debit, credit=leg.credit, **fields),
                **fields,
            )
        )
    session.flush()
    return txn_id
