"""The ledger's posting rules, apart from storage: what a valid posting is, how it moves balances,
when it must be refused, and the digest that makes an edited transfer visible. No database here;
gateway.ledger.store applies these rules inside a transaction."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import GatewayError

_CURRENCY = re.compile(r"[A-Z]{3}")
_KIND = re.compile(r"[a-z_]{1,16}")
MAX_REF = 64
MAX_ACCOUNT = 80


@dataclass(frozen=True, slots=True)
class Leg:
    """``amount_fen`` moves from ``debit`` to ``credit``."""

    debit: str
    credit: str
    amount_fen: int


class LedgerError(GatewayError):
    """A posting the ledger refuses; nothing was written."""


class InvalidPosting(LedgerError):
    """The posting itself is malformed (no legs, a non-positive amount, an unknown currency…)."""


class PostingConflict(LedgerError):
    """The same (kind, ref) was already posted with other legs: a retry must repeat the original."""


class CurrencyMismatch(LedgerError):
    """An account holds one currency only."""


class InsufficientFunds(LedgerError):
    """A wallet would go below zero."""

    def __init__(self, account: str, balance: int, needed: int) -> None:
        super().__init__(f"{account} holds {balance} fen and {needed} fen were asked of it")
        self.account = account
        self.balance = balance
        self.needed = needed


def validate(kind: str, ref: str, currency: str, legs: Sequence[Leg]) -> None:
    """Raise InvalidPosting unless every field is one the ledger can store and sum."""
    if not _KIND.fullmatch(kind):
        raise InvalidPosting(f"posting kind {kind!r} must be 1-16 lower-case letters or '_'")
    if not ref or len(ref) > MAX_REF:
        raise InvalidPosting(f"posting ref must be 1-{MAX_REF} characters")
    if not _CURRENCY.fullmatch(currency):
        raise InvalidPosting(f"currency {currency!r} must be three capital letters, like CNY")
    if not legs:
        raise InvalidPosting("a posting needs at least one leg")
    seen: set[tuple[str, str]] = set()
    for leg in legs:
        # bool is an int in Python; an amount is never a truth value.
        if type(leg.amount_fen) is not int or leg.amount_fen <= 0:
            raise InvalidPosting(f"leg amount {leg.amount_fen!r} must be a positive integer (fen)")
        if leg.debit == leg.credit:
            raise InvalidPosting(f"leg moves money from {leg.debit} to itself")
        for code in (leg.debit, leg.credit):
            if ":" not in code or len(code) > MAX_ACCOUNT:
                raise InvalidPosting(f"account code {code!r} must be 'kind:name', at most 80")
        if (leg.debit, leg.credit) in seen:
            # The unique (kind, ref, debit, credit) would refuse it; say so before the database.
            raise InvalidPosting(f"two legs move money from {leg.debit} to {leg.credit}")
        seen.add((leg.debit, leg.credit))


def net_changes(legs: Sequence[Leg]) -> dict[str, int]:
    """Each account's change in balance (credits − debits) if ``legs`` were posted."""
    change: dict[str, int] = {}
    for leg in legs:
        change[leg.debit] = change.get(leg.debit, 0) - leg.amount_fen
        change[leg.credit] = change.get(leg.credit, 0) + leg.amount_fen
    return change


def digest(
    *,
    txn_id: str,
    kind: str,
    ref: str,
    debit: str,
    credit: str,
    amount_fen: int,
    currency: str,
    created_at: int,
) -> str:
    """SHA-256 over a transfer's fields: a row changed by hand no longer matches its digest.

    It shows edits made around the ledger's code (an UPDATE, a restore gone wrong); it is not a
    seal against someone who can also recompute it."""
    fields = (txn_id, kind, ref, debit, credit, str(amount_fen), currency, str(created_at))
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
