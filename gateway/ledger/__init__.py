"""The double-entry ledger: accounts and immutable transfers, balances derived from them.

Modelled on TigerBeetle's transfers: every movement debits one account and credits another by the
same positive amount, rows are only inserted, and a correction is a new reversing transfer.
Posting rules live in ``rules`` (no database), storage in ``store``, soundness in ``check``."""

from gateway.ledger.check import check, transfer_count
from gateway.ledger.rules import (
    CurrencyMismatch,
    InsufficientFunds,
    InvalidPosting,
    LedgerError,
    Leg,
    PostingConflict,
)
from gateway.ledger.store import balance, currency_of, post

__all__ = [
    "CurrencyMismatch",
    "InsufficientFunds",
    "InvalidPosting",
    "LedgerError",
    "Leg",
    "PostingConflict",
    "balance",
    "check",
    "currency_of",
    "post",
    "transfer_count",
]
