"""The tiered tariff (阶梯电价) and the quote: how many Wh an amount buys.

Exact integer arithmetic. Prices are milli-fen per kWh, so one Wh at price p costs p micro-fen
(10^-6 fen), and an amount of A fen is A·10^6 micro-fen: every comparison below is between
integers and no rounding happens except the last partial Wh, which is rounded down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.errors import GatewayError

MICRO_PER_FEN = 1_000_000
MAX_TIERS = 8


class TariffError(GatewayError):
    """A tariff that cannot price energy: say which part is wrong."""


@dataclass(frozen=True, slots=True)
class Tier:
    upto_wh: int | None  # this tier ends at this year's usage; None: no end (the last tier)
    price_milli_fen_per_kwh: int


@dataclass(frozen=True, slots=True)
class TierUse:
    tier: int  # 1-based
    energy_wh: int
    price_milli_fen_per_kwh: int


@dataclass(frozen=True, slots=True)
class Quote:
    amount_fen: int
    energy_wh: int
    tiers: tuple[TierUse, ...]
    year_usage_wh: int

    def to_json(self, currency: str) -> dict[str, object]:
        return {
            "amount_fen": self.amount_fen,
            "currency": currency,
            "energy_wh": self.energy_wh,
            "tiers": [
                {
                    "tier": t.tier,
                    "energy_wh": t.energy_wh,
                    "price_milli_fen_per_kwh": t.price_milli_fen_per_kwh,
                }
                for t in self.tiers
            ],
            "year_usage_wh": self.year_usage_wh,
        }


def check_tiers(tiers: list[Tier]) -> tuple[Tier, ...]:
    """Refuse a tariff that leaves energy unpriced or priced at nothing."""
    if not 1 <= len(tiers) <= MAX_TIERS:
        raise TariffError(f"a tariff has 1 to {MAX_TIERS} tiers, not {len(tiers)}")
    previous = 0
    for number, tier in enumerate(tiers, 1):
        if tier.price_milli_fen_per_kwh < 1:
            raise TariffError(f"tier {number}: the price must be at least 1 milli-fen per kWh")
        last = number == len(tiers)
        if last != (tier.upto_wh is None):
            raise TariffError(
                f"tier {number}: only the last tier has no upper bound (upto_wh null)"
            )
        if tier.upto_wh is not None:
            if tier.upto_wh <= previous:
                raise TariffError(f"tier {number}: upto_wh must grow from tier to tier")
            previous = tier.upto_wh
    return tuple(tiers)


def parse_tariff(text: str) -> tuple[Tier, ...]:
    """The stored or typed JSON ``[{"upto_wh": int|null, "price_milli_fen_per_kwh": int}, …]``."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise TariffError("the tariff is not JSON") from None
    if not isinstance(raw, list):
        raise TariffError("the tariff is a JSON list of tiers")
    tiers = []
    for number, item in enumerate(raw, 1):
        if not isinstance(item, dict) or set(item) != {"upto_wh", "price_milli_fen_per_kwh"}:
            raise TariffError(f"tier {number}: give exactly upto_wh and price_milli_fen_per_kwh")
        upto, price = item["upto_wh"], item["price_milli_fen_per_kwh"]
        if not (upto is None or _is_int(upto)) or not _is_int(price):
            raise TariffError(f"tier {number}: upto_wh and the price are whole numbers")
        tiers.append(Tier(upto, price))
    return check_tiers(tiers)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def dump_tariff(tiers: tuple[Tier, ...]) -> str:
    return json.dumps(
        [
            {"upto_wh": t.upto_wh, "price_milli_fen_per_kwh": t.price_milli_fen_per_kwh}
            for t in tiers
        ]
    )


def quote(tiers: tuple[Tier, ...], year_usage_wh: int, amount_fen: int) -> Quote:
    """Energy for ``amount_fen`` given this year's usage: fill the rest of the current tier at its
    price, then the next tier, …; the last partial Wh is rounded down."""
    budget = amount_fen * MICRO_PER_FEN
    used = year_usage_wh
    uses = []
    for number, tier in enumerate(tiers, 1):
        if tier.upto_wh is not None and used >= tier.upto_wh:
            continue  # this year's usage is already past this tier
        affordable = budget // tier.price_milli_fen_per_kwh
        room = affordable if tier.upto_wh is None else min(affordable, tier.upto_wh - used)
        if room:
            budget -= room * tier.price_milli_fen_per_kwh
            used += room
            uses.append(TierUse(number, room, tier.price_milli_fen_per_kwh))
        if tier.upto_wh is None or used < tier.upto_wh:
            break  # the money ran out inside this tier: the next one is reached only through it
    return Quote(amount_fen, used - year_usage_wh, tuple(uses), year_usage_wh)
