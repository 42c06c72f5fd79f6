"""The confirmation text's canonical form and the amount rule the gateway applies to it."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest

from protocol.display import canonical_text, display_hash, stated_amounts_fen, states_amount
from protocol.errors import PayloadError


def test_the_hash_is_sha256_of_the_nfc_utf8_lines_joined_by_newlines() -> None:
    text = canonical_text([unicodedata.normalize("NFD", "Café"), "金额：¥1,234.56"])
    assert text == "Café\n金额：¥1,234.56"
    assert display_hash(text) == hashlib.sha256(text.encode("utf-8")).digest()


@pytest.mark.parametrize("line", ["a\nb", "a\rb", "a\x00b", "a\x85b"])
def test_a_line_with_a_control_character_is_refused(line: str) -> None:
    with pytest.raises(PayloadError, match="control"):
        canonical_text(["确认缴费", line])


def test_a_text_not_in_nfc_has_no_hash() -> None:
    with pytest.raises(PayloadError, match="NFC"):
        display_hash(unicodedata.normalize("NFD", "Café"))


@pytest.mark.parametrize(
    ("text", "amounts"),
    [
        ("金额：¥123.45", [12345]),
        ("Amount: HK$1,234,567.08", [123456708]),
        ("Amount: EUR 0.05", [5]),
        ("期间：2026-03\n户号：******3456", []),
        ("2026.03.15", []),  # a date with points is no amount
        ("123.456", []),  # three decimals: not how amounts are written
        ("1,23.45", []),  # a badly grouped number
        ("¥10.00 ¥100.00", [1000, 10000]),
    ],
)
def test_amounts_are_read_as_the_app_writes_them(text: str, amounts: list[int]) -> None:
    assert stated_amounts_fen(text) == amounts


def test_the_text_must_state_exactly_the_one_amount() -> None:
    assert states_amount("确认缴费\n金额：¥123.45", 12345)
    assert not states_amount("确认缴费\n金额：¥1,234.50", 12345)
    assert not states_amount("确认缴费\n金额：¥123.45\n优惠：¥1.00", 12345)
    assert not states_amount("确认缴费", 12345)
