"""Typed errors of the bank simulator; each maps to one HTTP status and a stable code."""

from __future__ import annotations


class BankError(Exception):
    """Base of every bank simulator error; ``message`` says what to do next."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownAccount(BankError):
    status = 404
    code = "unknown_account"


class CurrencyMismatch(BankError):
    status = 422
    code = "currency_mismatch"


class KeyReused(BankError):
    status = 409
    code = "idempotency_key_reused"


class NoSuchDebit(BankError):
    status = 404
    code = "debit_not_found"


class NothingToReverse(BankError):
    status = 409
    code = "nothing_to_reverse"


class BankDown(BankError):
    status = 503
    code = "bank_down"


class SeedFileError(BankError):
    """The seed file cannot be read or is not the documented shape; nothing was loaded."""


class StateDirError(BankError):
    """The state directory cannot be created or its database opened."""
