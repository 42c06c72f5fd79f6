"""A utility's rules for prepaid purchases: amount steps and limits, presets, the fulfilment
window and the tariff; and the refusals they give before the household enters its PIN."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.db.models import Biller
from gateway.db.models import PrepaidRules as RulesRow
from gateway.errors import Conflict, GatewayError, Unprocessable
from gateway.ledger.amounts import show
from gateway.prepaid.tariff import Tier, check_tiers, dump_tariff, parse_tariff

CURRENCY = "CNY"  # prepaid electricity is sold in yuan
MAX_PRESETS = 8
MAX_FEN = 10**10  # ¥100,000,000: far beyond any meter, small enough for every integer column

DEFAULTS: dict[str, int] = {
    "multiple_of_fen": 1000,
    "min_fen": 1000,
    "max_purchase_fen": 100_000,
    "max_balance_fen": 300_000,
    "fulfil_window_seconds": 72 * 3600,
}
DEFAULT_PRESETS = (5000, 10000, 20000, 50000)


class RulesError(GatewayError):
    """Rules an operator typed that cannot work; the message names the field."""


@dataclass(frozen=True, slots=True)
class Rules:
    biller_code: str
    multiple_of_fen: int
    min_fen: int
    max_purchase_fen: int
    max_balance_fen: int
    presets_fen: tuple[int, ...]
    fulfil_window_seconds: int
    tariff: tuple[Tier, ...]

    def to_json(self) -> dict[str, object]:
        """The rules as a client sees them (the tariff is shown through quotes)."""
        return {
            "multiple_of_fen": self.multiple_of_fen,
            "min_fen": self.min_fen,
            "max_purchase_fen": self.max_purchase_fen,
            "max_balance_fen": self.max_balance_fen,
            "presets_fen": list(self.presets_fen),
            "fulfil_window_seconds": self.fulfil_window_seconds,
        }


def _from_row(row: RulesRow) -> Rules:
    return Rules(
        biller_code=row.biller_code,
        multiple_of_fen=row.multiple_of_fen,
        min_fen=row.min_fen,
        max_purchase_fen=row.max_purchase_fen,
        max_balance_fen=row.max_balance_fen,
        presets_fen=tuple(json.loads(row.presets)),
        fulfil_window_seconds=row.fulfil_window_seconds,
        tariff=parse_tariff(row.tariff),
    )


def load_rules(session: Session, biller_code: str) -> Rules:
    row = session.get(RulesRow, biller_code)
    if row is None:
        raise Conflict(
            f"The utility {biller_code} does not sell prepaid electricity through TVPay yet; "
            "ask the utility or the operator.",
            code="prepaid_not_offered",
        )
    return _from_row(row)


def validate(rules: Rules) -> Rules:
    """Refuse rules under which no purchase could be made, or one could exceed the limits."""
    for name in ("multiple_of_fen", "min_fen", "max_purchase_fen", "max_balance_fen"):
        value = getattr(rules, name)
        if not 1 <= value <= MAX_FEN:
            raise RulesError(f"{name} must be 1..{MAX_FEN} fen, not {value}")
    if not rules.min_fen <= rules.max_purchase_fen <= rules.max_balance_fen:
        raise RulesError("the limits must satisfy min_fen <= max_purchase_fen <= max_balance_fen")
    if rules.min_fen % rules.multiple_of_fen or rules.max_purchase_fen % rules.multiple_of_fen:
        raise RulesError("min_fen and max_purchase_fen must be multiples of multiple_of_fen")
    if not 1 <= len(rules.presets_fen) <= MAX_PRESETS:
        raise RulesError(f"give 1 to {MAX_PRESETS} presets")
    for preset in rules.presets_fen:
        if preset % rules.multiple_of_fen or not rules.min_fen <= preset <= rules.max_purchase_fen:
            raise RulesError(
                f"preset {preset} fen must be a multiple of multiple_of_fen within the limits"
            )
    if not 60 <= rules.fulfil_window_seconds <= 90 * 86400:
        raise RulesError("fulfil_window_seconds must be 60 s .. 90 days")
    check_tiers(list(rules.tariff))
    return rules


def save_rules(session: Session, rules: Rules) -> None:
    """Create or replace a biller's rules (``tvpay-gateway prepaid rules set``)."""
    if session.get(Biller, rules.biller_code) is None:
        raise RulesError(f"no biller {rules.biller_code}; import its bills or accounts first")
    validate(rules)
    row = session.get(RulesRow, rules.biller_code) or RulesRow(biller_code=rules.biller_code)
    row.multiple_of_fen, row.min_fen = rules.multiple_of_fen, rules.min_fen
    row.max_purchase_fen, row.max_balance_fen = rules.max_purchase_fen, rules.max_balance_fen
    row.presets = json.dumps(list(rules.presets_fen))
    row.fulfil_window_seconds = rules.fulfil_window_seconds
    row.tariff = dump_tariff(rules.tariff)
    session.add(row)


def check_amount(rules: Rules, amount_fen: int, currency: str, balance_fen: int | None) -> None:
    """Refuse an amount the utility would not sell, with its numbers in yuan; ``balance_fen`` is
    the meter's last known balance (None: not known, the balance limit is not checked)."""
    if currency != CURRENCY:
        raise Unprocessable(
            f"Prepaid electricity is sold in {CURRENCY}; send the amount in {CURRENCY}.",
            code="currency_mismatch",
        )
    step, low, high = rules.multiple_of_fen, rules.min_fen, rules.max_purchase_fen
    if amount_fen < low:
        raise Unprocessable(
            f"The smallest purchase is {show(low, CURRENCY)}; {show(amount_fen, CURRENCY)} is "
            "below it.",
            code="amount_below_minimum",
            details={"amount_fen": amount_fen, "min_fen": low},
        )
    if amount_fen > high:
        raise Unprocessable(
            f"The largest purchase is {show(high, CURRENCY)}; {show(amount_fen, CURRENCY)} is "
            "above it.",
            code="amount_above_maximum",
            details={"amount_fen": amount_fen, "max_purchase_fen": high},
        )
    if amount_fen % step:
        raise Unprocessable(
            f"Buy in steps of {show(step, CURRENCY)}: {show(amount_fen, CURRENCY)} is not one; "
            f"try {show(max(low, amount_fen - amount_fen % step), CURRENCY)}.",
            code="amount_not_multiple",
            details={"amount_fen": amount_fen, "multiple_of_fen": step},
        )
    if balance_fen is not None and balance_fen + amount_fen > rules.max_balance_fen:
        room = max(0, rules.max_balance_fen - balance_fen)
        room -= room % step
        raise Unprocessable(
            f"The meter holds {show(balance_fen, CURRENCY)} and may hold at most "
            f"{show(rules.max_balance_fen, CURRENCY)}: buy at most {show(room, CURRENCY)} now.",
            code="balance_above_maximum",
            details={
                "amount_fen": amount_fen,
                "balance_fen": balance_fen,
                "max_balance_fen": rules.max_balance_fen,
            },
        )
