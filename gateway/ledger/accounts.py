"""The ledger's account codes. A code names its kind before the colon; the kind decides the rules
(only a wallet may never go below zero)."""

from __future__ import annotations

TOPUPS = "external:topups"  # where wallet top-ups come from: shop cash, bank transfer
BANK_CLEARING = "bank:clearing"  # what the bank owes us for mandate debits; goes negative
SETTLEMENTS = "external:settlements"  # what we paid out to utilities

WALLET_PREFIX = "wallet:"
PAYABLE_PREFIX = "payable:"
COMMISSION_PREFIX = "commission:"


def wallet(household_no: str) -> str:
    """The household's prepaid wallet; it never goes below zero."""
    return WALLET_PREFIX + household_no


def payable(biller_code: str) -> str:
    """What we owe the utility behind ``biller_code``."""
    return PAYABLE_PREFIX + biller_code


def commission(shop_no: str) -> str:
    """What we owe a shop (代售点) for the sales it made: carved out of the utilities' payables."""
    return COMMISSION_PREFIX + shop_no


def kind_of(code: str) -> str:
    """``wallet``, ``payable``, ``commission``, ``external`` or ``bank``: the part before the
    colon."""
    return code.split(":", 1)[0]


def is_wallet(code: str) -> bool:
    return code.startswith(WALLET_PREFIX)


def is_payable(code: str) -> bool:
    return code.startswith(PAYABLE_PREFIX)
