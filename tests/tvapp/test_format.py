"""Money from integer fen, masked account numbers and names."""

from __future__ import annotations

import pytest

from tvapp.format import (
    format_fingerprint,
    format_money,
    format_period,
    mask_account,
    mask_name,
)


def test_money_is_shown_from_integer_fen() -> None:
    assert format_money(12345) == "¥123.45"
    assert format_money(5) == "¥0.05"
    assert format_money(123456789) == "¥1,234,567.89"
    assert format_money(100, "USD") == "US$1.00"


def test_money_refuses_floats_and_booleans() -> None:
    with pytest.raises(TypeError):
        format_money(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_money(True)


def test_account_numbers_show_only_the_last_four() -> None:
    assert mask_account("9139099603") == "****9603"
    assert mask_account("******9603") == "******9603"  # already masked by the gateway


def test_names_are_masked_the_chinese_way() -> None:
    assert mask_name("张三丰") == "张*丰"
    assert mask_name("李四") == "李*"
    assert mask_name("彭*") == "彭*"


def test_period_is_year_and_month() -> None:
    assert format_period("2025-01-31") == "2025-01"


def test_a_fingerprint_is_the_first_64_bits_in_groups_of_four() -> None:
    digest = "ccb9bfd7b6d098b4c10f2108c90f34f6fef0370b216fa3bf644a937d1e3fd3dc"
    assert format_fingerprint(digest) == "CCB9 BFD7 B6D0 98B4"
