"""The virtual STS keypad meter: credit, replay refusal (used / old), invalid and wrong-meter
tokens, the 50-TID memory, consumption, and its state file across restarts and failed saves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.meters.token_meter import TokenMeterError, TokenRefusal, VirtualTokenMeter
from emulator.meters.token_meter_state import TokenMeterStateError
from protocol.sts import MeterIdentity, credit_token, derive_decoder_key

VENDING_KEY = bytes.fromhex("0f1e2d3c4b5a6978")
METER = MeterIdentity(drn="01234567897", sgc=600100, ti=1, krn=1)
OTHER_METER = MeterIdentity(drn="00000000000", sgc=600100, ti=1, krn=1)
KEY = derive_decoder_key(vending_key=VENDING_KEY, meter=METER)
OTHER_KEY = derive_decoder_key(vending_key=VENDING_KEY, meter=OTHER_METER)


def token(tid: int, units: int = 100, *, key: bytes = KEY, subclass: int = 0) -> str:
    return credit_token(decoder_key=key, tid=tid, units=units, rnd=tid % 16, subclass=subclass)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "token-meter.json"


def test_a_token_credits_once_and_survives_a_restart(state_path: Path) -> None:
    meter = VirtualTokenMeter(METER, KEY, state_path)
    result = meter.enter(token(1000, units=125))
    assert result.accepted and result.units == 125 and result.tid == 1000
    assert result.message == "12.5 kWh credited"
    assert meter.credit_wh == 12_500

    restarted = VirtualTokenMeter(METER, KEY, state_path)
    assert restarted.credit_wh == 12_500
    again = restarted.enter(token(1000, units=125))
    assert not again.accepted and again.reason == TokenRefusal.USED == "used"
    assert restarted.credit_wh == 12_500


def test_keypad_spaces_and_dashes_are_ignored() -> None:
    digits = token(7)
    grouped = " ".join(digits[i : i + 4] for i in range(0, 20, 4))
    assert VirtualTokenMeter(METER, KEY).enter(grouped).accepted
    assert VirtualTokenMeter(METER, KEY).enter(grouped.replace(" ", "-")).accepted


@pytest.mark.parametrize("digits", ["", "1234", "abcd" * 5, "1" * 21, None])
def test_garbage_is_invalid(digits: str) -> None:
    meter = VirtualTokenMeter(METER, KEY)
    result = meter.enter(digits)
    assert result.reason == TokenRefusal.INVALID and result.message
    assert meter.credit_wh == 0


def test_a_typo_is_invalid() -> None:
    digits = token(5)
    typo = digits[:10] + str((int(digits[10]) + 1) % 10) + digits[11:]
    meter = VirtualTokenMeter(METER, KEY)
    assert meter.enter(typo).reason == TokenRefusal.INVALID
    assert meter.enter(digits).accepted


def test_another_meters_token_is_refused() -> None:
    meter = VirtualTokenMeter(METER, KEY)
    result = meter.enter(token(5, key=OTHER_KEY))
    assert result.reason == TokenRefusal.INVALID
    assert "another meter" in result.message
    assert meter.credit_wh == 0


def test_a_water_token_is_for_the_wrong_meter() -> None:
    meter = VirtualTokenMeter(METER, KEY)
    result = meter.enter(token(5, subclass=1))
    assert result.reason == TokenRefusal.WRONG_METER
    assert meter.credit_wh == 0
    # Refused tokens do not burn their TID.
    assert meter.enter(token(5)).accepted


def test_out_of_order_tokens_are_accepted_while_the_memory_holds_every_tid() -> None:
    meter = VirtualTokenMeter(METER, KEY)
    assert meter.enter(token(200)).accepted
    assert meter.enter(token(100)).accepted
    assert meter.enter(token(100)).reason == TokenRefusal.USED


def test_the_memory_keeps_the_newest_50_and_refuses_older_tokens(state_path: Path) -> None:
    meter = VirtualTokenMeter(METER, KEY, state_path)
    for tid in range(1000, 1051):  # 51 tokens: TID 1000 drops out of the memory
        assert meter.enter(token(tid, units=1)).accepted
    assert meter.credit_wh == 51 * 100
    assert json.loads(state_path.read_text())["tids"] == list(range(1001, 1051))

    restarted = VirtualTokenMeter(METER, KEY, state_path)
    assert restarted.enter(token(1000, units=1)).reason == TokenRefusal.OLD
    assert restarted.enter(token(999, units=1)).reason == TokenRefusal.OLD
    assert restarted.enter(token(1001, units=1)).reason == TokenRefusal.USED
    assert restarted.enter(token(1050, units=1)).reason == TokenRefusal.USED
    assert restarted.credit_wh == 51 * 100
    # A new token between remembered ones is still new.
    assert restarted.enter(token(2000, units=1)).accepted


def test_consume_draws_down_to_zero_and_persists(state_path: Path) -> None:
    meter = VirtualTokenMeter(METER, KEY, state_path)
    meter.enter(token(1, units=10))  # 1 kWh
    assert meter.consume(400) == 400
    assert meter.credit_wh == 600
    assert meter.consume(1000) == 600
    assert meter.credit_wh == 0
    assert meter.consume(5) == 0
    assert VirtualTokenMeter(METER, KEY, state_path).credit_wh == 0


@pytest.mark.parametrize("wh", [-1, 1.5, True, "10"])
def test_consume_refuses_impossible_energy(wh: object) -> None:
    with pytest.raises(TokenMeterError):
        VirtualTokenMeter(METER, KEY).consume(wh)  # type: ignore[arg-type]


def test_bad_construction_is_a_typed_error() -> None:
    with pytest.raises(TokenMeterError, match="8 bytes"):
        VirtualTokenMeter(METER, b"short")
    with pytest.raises(TokenMeterError, match="MeterIdentity"):
        VirtualTokenMeter("01234567897", KEY)  # type: ignore[arg-type]


def _valid_record() -> dict[str, object]:
    return {
        "format": "tvpay-token-meter/1",
        "drn": METER.drn,
        "credited_wh": 1000,
        "used_wh": 100,
        "tids": [1, 2, 3],
    }


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\xff\xfe", "cannot read"),
        (b"{not json", "not a token meter state file"),
        (b"[]", "not a token meter state file"),
        (json.dumps(_valid_record() | {"format": "x"}).encode(), "not a token meter state"),
        (json.dumps(_valid_record() | {"drn": "00000000000"}).encode(), "another meter"),
        (json.dumps(_valid_record() | {"used_wh": 1001}).encode(), "used_wh"),
        (json.dumps(_valid_record() | {"credited_wh": -1}).encode(), "credited_wh"),
        (json.dumps(_valid_record() | {"credited_wh": "1000"}).encode(), "credited_wh"),
        (json.dumps(_valid_record() | {"tids": [3, 2]}).encode(), "tids"),
        (json.dumps(_valid_record() | {"tids": [2, 2]}).encode(), "tids"),
        (json.dumps(_valid_record() | {"tids": [1 << 24]}).encode(), "tids"),
        (json.dumps(_valid_record() | {"tids": list(range(51))}).encode(), "tids"),
        (json.dumps(_valid_record() | {"tids": None}).encode(), "tids"),
    ],
)
def test_bad_state_files_are_a_typed_error(state_path: Path, content: bytes, match: str) -> None:
    state_path.write_bytes(content)
    with pytest.raises(TokenMeterStateError, match=match):
        VirtualTokenMeter(METER, KEY, state_path)
    assert state_path.read_bytes() == content


def test_a_valid_state_file_is_loaded(state_path: Path) -> None:
    state_path.write_text(json.dumps(_valid_record()))
    meter = VirtualTokenMeter(METER, KEY, state_path)
    assert meter.credit_wh == 900
    assert meter.enter(token(2)).reason == TokenRefusal.USED


def test_a_failed_save_credits_nothing_and_burns_no_tid(state_path: Path) -> None:
    meter = VirtualTokenMeter(METER, KEY, state_path)
    assert meter.enter(token(1)).accepted
    before = state_path.read_bytes()
    # The save writes <name>.tmp first: a directory in its way makes the write fail for real.
    blocker = state_path.with_name(state_path.name + ".tmp")
    blocker.mkdir()
    with pytest.raises(TokenMeterStateError, match="cannot save"):
        meter.enter(token(2))
    with pytest.raises(TokenMeterStateError, match="cannot save"):
        meter.consume(10)
    assert meter.credit_wh == 10_000
    assert state_path.read_bytes() == before
    blocker.rmdir()
    assert meter.enter(token(2)).accepted
    assert VirtualTokenMeter(METER, KEY, state_path).credit_wh == 20_000
