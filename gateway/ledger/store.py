"""The ledger in the database: post transfers and read balances inside the caller's transaction.

A balance is credits − debits over the account's transfers. Wallets also carry that figure on
their account row (``balance_fen``), moved by the same statement that checks it: a payment
then costs one indexed UPDATE instead of a sum over the household's whole history, and the
conditional UPDATE (``… WHERE balance_fen + change >= 0``) is also the row lock that serializes
two payments racing for the last yuan on PostgreSQL (SQLite serializes writers anyway).
`ledger check` proves every stored figure equals the sum of its transfers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.models import LedgerAccount, LedgerTransfer
from gateway.ids import new_id
from gateway.ledger import accounts
from gateway.ledger.rules import (
    CurrencyMismatch,
    InsufficientFunds,
    Leg,
    PostingConflict,
    digest,
    net_changes,
    validate,
)


def balance(session: Session, account: str) -> int:
    """Credits − debits of ``account`` in fen (0 for an account never used)."""
    if accounts.is_wallet(account):
        stored = session.scalar(
            select(LedgerAccount.balance_fen).where(LedgerAccount.code == account)
        )
        return int(stored or 0)
    return derived_balance(session, account)


def derived_balance(session: Session, account: str) -> int:
    """Credits − debits of ``account`` summed over its transfers."""
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
                    code=code,
                    kind=accounts.kind_of(code),
                    currency=currency,
                    created_at=now(),
                    balance_fen=0 if accounts.is_wallet(code) else None,
                )
            )
        elif row.currency != currency:
            raise CurrencyMismatch(f"{code} holds {row.currency}, not {currency}")
    session.flush()


def _move_wallets(session: Session, legs: Sequence[Leg]) -> None:
    """Apply the legs' net change to each wallet's stored balance, in code order (so two
    postings touching the same wallets lock them in the same order); refuse, leaving the
    caller's transaction to roll back, when a wallet would go below zero."""
    for code, change in sorted(net_changes(legs).items()):
        if not accounts.is_wallet(code) or change == 0:
            continue
        moved = session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.code == code, LedgerAccount.balance_fen + change >= 0)
            .values(balance_fen=LedgerAccount.balance_fen + change)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            raise InsufficientFunds(code, balance(session, code), -change)


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
    existing = _already_posted(session, kind, ref, legs)
    if existing is not None:
        return existing
    # Two identical postings racing past this point both move the balance; the unique
    # (kind, ref, debit, credit) then refuses the second transaction as a whole.
    _move_wallets(session, legs)
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
