"""The utility's rules on one purchase, checked on the box as the household types the amount.

The gateway checks the same rules (422, docs/prepaid.md) when the quote is asked for and the
purchase is made; checking them here too means a refusal is said in words on the buy screen as
the digits are typed, and the household never reaches the PIN with an amount that would be
refused.
"""

from __future__ import annotations

from tvapp.services.prepaid import PrepaidRules

# The gateway's refusal codes, in the order they are checked.
BELOW_MINIMUM = "amount_below_minimum"
ABOVE_MAXIMUM = "amount_above_maximum"
NOT_MULTIPLE = "amount_not_multiple"
BALANCE_ABOVE_MAXIMUM = "balance_above_maximum"
REFUSALS = (BELOW_MINIMUM, ABOVE_MAXIMUM, NOT_MULTIPLE, BALANCE_ABOVE_MAXIMUM)


def amount_refusal(rules: PrepaidRules, amount_fen: int, balance_fen: int | None) -> str:
    """The rule ``amount_fen`` breaks ("" when none); ``balance_fen`` is the meter's known
    balance (None: not known, e.g. a token meter)."""
    if amount_fen < rules.min_fen:
        return BELOW_MINIMUM
    if amount_fen > rules.max_purchase_fen:
        return ABOVE_MAXIMUM
    if amount_fen % rules.multiple_of_fen:
        return NOT_MULTIPLE
    if balance_fen is not None and balance_fen + amount_fen > rules.max_balance_fen:
        return BALANCE_ABOVE_MAXIMUM
    return ""


def room_fen(rules: PrepaidRules, balance_fen: int | None) -> int:
    """How much may still be bought before the meter's balance reaches the maximum."""
    if balance_fen is None:
        return rules.max_purchase_fen
    return max(0, min(rules.max_purchase_fen, rules.max_balance_fen - balance_fen))
