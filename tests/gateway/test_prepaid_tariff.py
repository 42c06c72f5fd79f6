"""The tiered tariff's quote is exact integer arithmetic: checked at the tier boundaries and,
with hypothesis, for every amount and year's usage: more money never buys less energy, and no
amount buys more than it would at the lowest price."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.prepaid.tariff import MICRO_PER_FEN, TariffError, Tier, parse_tariff, quote

TIERS = (Tier(2_160_000, 56030), Tier(4_200_000, 61030), Tier(None, 86030))
# A falling tariff too: a cheaper upper tier is still reached only through the dearer one.
FALLING = (Tier(1_000, 90000), Tier(None, 10000))

amounts = st.integers(min_value=1, max_value=10**7)
usages = st.integers(min_value=0, max_value=6_000_000)
tariffs = st.sampled_from([TIERS, FALLING])


@given(tariffs, usages, amounts, amounts)
def test_energy_grows_with_the_amount(tiers: tuple[Tier, ...], used: int, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert quote(tiers, used, low).energy_wh <= quote(tiers, used, high).energy_wh


@given(tariffs, usages, amounts)
def test_never_more_than_the_amount_buys_at_the_lowest_price(
    tiers: tuple[Tier, ...], used: int, amount: int
) -> None:
    offer = quote(tiers, used, amount)
    cheapest = min(t.price_milli_fen_per_kwh for t in tiers)
    assert offer.energy_wh <= amount * MICRO_PER_FEN // cheapest
    # What the tiers charge never exceeds the amount, and the tiers add up to the energy.
    spent = sum(t.energy_wh * t.price_milli_fen_per_kwh for t in offer.tiers)
    assert spent <= amount * MICRO_PER_FEN
    assert sum(t.energy_wh for t in offer.tiers) == offer.energy_wh
    # Less than one Wh's price is left over: the only rounding is the last Wh, down.
    assert amount * MICRO_PER_FEN - spent < max(t.price_milli_fen_per_kwh for t in tiers)


@given(tariffs, usages, amounts)
def test_a_tier_is_reached_only_through_the_full_tiers_below_it(
    tiers: tuple[Tier, ...], used: int, amount: int
) -> None:
    offer = quote(tiers, used, amount)
    reached = used
    for number, use in enumerate(offer.tiers, 1):
        start = tiers[use.tier - 2].upto_wh if use.tier > 1 else 0
        assert reached >= (start or 0)  # this tier's usage starts where the one below ended
        reached += use.energy_wh
        if number < len(offer.tiers):
            assert reached == tiers[use.tier - 1].upto_wh  # left only when full


def test_a_purchase_across_a_tier_boundary_pays_each_tier_its_price() -> None:
    # 1 kWh left in tier 1: 56.03 fen; ¥10.00 − that at 0.6103 yuan/kWh in tier 2.
    offer = quote(TIERS, 2_159_000, 1000)
    rest = 1000 * MICRO_PER_FEN - 1000 * 56030
    assert [(t.tier, t.energy_wh) for t in offer.tiers] == [(1, 1000), (2, rest // 61030)]
    assert offer.energy_wh == 1000 + rest // 61030
    # Exactly at the boundary: all in tier 2.
    assert [t.tier for t in quote(TIERS, 2_160_000, 1000).tiers] == [2]
    # Past the last boundary: tier 3 only.
    assert [(t.tier, t.energy_wh) for t in quote(TIERS, 5_000_000, 86030).tiers] == [(3, 10**6)]


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{}",
        "not json",
        '[{"upto_wh": null, "price_milli_fen_per_kwh": 0}]',
        '[{"upto_wh": 5, "price_milli_fen_per_kwh": 1}]',
        '[{"upto_wh": 5, "price_milli_fen_per_kwh": 1}, {"upto_wh": 5, "price_milli_fen_per_kwh": 1}]',
        '[{"upto_wh": null, "price_milli_fen_per_kwh": 1}, {"upto_wh": null, "price_milli_fen_per_kwh": 1}]',
        '[{"upto_wh": null, "price_milli_fen_per_kwh": true}]',
        '[{"upto_wh": null, "price_milli_fen_per_kwh": 1, "x": 1}]',
    ],
)
def test_a_tariff_that_cannot_price_energy_is_refused(text: str) -> None:
    with pytest.raises(TariffError):
        parse_tariff(text)
