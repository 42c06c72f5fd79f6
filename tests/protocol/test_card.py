"""The purchase card's layouts, MACs, keys and APDU builders (protocol/card.py).

The vectors below are fixed keys → fixed bytes: the box, the gateway's HSM and the meter must all
produce exactly these, so a change to any layout or MAC input shows up here first.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.card import (
    CardError,
    CardRead,
    CardStatusError,
    IssuerFile,
    PurchaseRecord,
    WriteBack,
    biller_hash,
    card_key,
    check_response,
    get_challenge,
    purchase_tag,
    read_binary,
    sm_update,
    vending_master_key,
    write_card_block,
)

SECRET = bytes(range(32))
BILLER = "SGCC-BJ"
SERIAL = bytes.fromhex("0102030405060708")
METER_NO = "000012345678"
CHALLENGE = bytes.fromhex("1122334455667788")

V_MASTER = "85687846f122accb96f34fdb24eaf2b4"
V_CARD_KEY = "8dddef5be4d54e6517f2be5243467d61"
V_ISSUER = "010102030405060708d52a498530303030313233343536373801000000000000"
V_BLANK = "0000000000000000000000000000000000000000000000007aa22ffb6319d6d9"
V_TAG = "2020c6259847e323"
V_RECORD = "0000000100001388000022db2020c6259847e3236553f164e88971fd3e58d4b3"
V_WRITEBACK = "0100000001ffffff060001e2406553f1c8000000000000006aa540f7f37fdad5"
V_BLOCK = [
    "04d68300240000000000000000000000000000000000000000000000000000000000000000" + "1d0f2c53",
    "04d6820024" + V_RECORD + "7db0bf11",
]

MASTER = bytes.fromhex(V_MASTER)
KEY = bytes.fromhex(V_CARD_KEY)
ISSUER = IssuerFile(SERIAL, biller_hash(BILLER), METER_NO)
RECORD = PurchaseRecord(1, 5000, 8923, purchase_tag("PUR-1"), 1700000100)

u32 = st.integers(0, 0xFFFFFFFF)


# -- vectors ----------------------------------------------------------------------------------


def test_key_vectors() -> None:
    assert vending_master_key(SECRET, BILLER).hex() == V_MASTER
    assert card_key(MASTER, SERIAL).hex() == V_CARD_KEY
    assert vending_master_key(SECRET, "other-biller") != MASTER
    assert card_key(MASTER, bytes(8)) != KEY


def test_file_vectors() -> None:
    assert ISSUER.to_bytes().hex() == V_ISSUER
    assert purchase_tag("PUR-1").hex() == V_TAG
    assert PurchaseRecord.blank().sign(KEY, ISSUER).to_bytes().hex() == V_BLANK
    assert RECORD.sign(KEY, ISSUER).to_bytes().hex() == V_RECORD
    report = WriteBack(True, 1, -250, 123456, 1700000200).sign(KEY, ISSUER)
    assert report.to_bytes().hex() == V_WRITEBACK
    assert WriteBack.EMPTY.to_bytes() == bytes(32)


def test_apdu_vectors() -> None:
    assert get_challenge().hex() == "0084000008"
    assert [read_binary(s).hex() for s in (1, 2, 3)] == ["00b0810020", "00b0820020", "00b0830020"]
    block = write_card_block(card_key=KEY, challenge=CHALLENGE, issuer=ISSUER, record=RECORD)
    assert [apdu.hex() for apdu in block] == V_BLOCK
    assert block[1] == sm_update(
        card_key=KEY, challenge=CHALLENGE, seq=1, sfi=2, data=bytes.fromhex(V_RECORD)
    )


# -- layouts ----------------------------------------------------------------------------------


@given(
    serial=st.binary(min_size=8, max_size=8),
    bhash=st.binary(min_size=4, max_size=4),
    meter_no=st.from_regex(r"[0-9]{12}", fullmatch=True),
    key_version=st.integers(0, 255),
)
def test_issuer_round_trip(serial: bytes, bhash: bytes, meter_no: str, key_version: int) -> None:
    issuer = IssuerFile(serial, bhash, meter_no, key_version)
    assert IssuerFile.parse(issuer.to_bytes()) == issuer


@given(u32, u32, u32, st.binary(min_size=8, max_size=8), u32)
def test_purchase_round_trip(count: int, amount: int, wh: int, tag: bytes, at: int) -> None:
    record = PurchaseRecord(count, amount, wh, tag, at).sign(KEY, ISSUER)
    assert PurchaseRecord.parse(record.to_bytes()) == record
    assert record.verify(KEY, ISSUER)


@given(u32, st.integers(-0x80000000, 0x7FFFFFFF), u32, u32)
def test_writeback_round_trip(count: int, remaining: int, used: int, at: int) -> None:
    report = WriteBack(True, count, remaining, used, at).sign(KEY, ISSUER)
    assert WriteBack.parse(report.to_bytes()) == report
    assert report.verify(KEY, ISSUER)
    assert WriteBack.parse(bytes(32)) == WriteBack.EMPTY


@settings(max_examples=300)
@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_parse_canonically_or_raise_card_error(data: bytes) -> None:
    for layout in (IssuerFile, PurchaseRecord, WriteBack):
        try:
            parsed = layout.parse(data)
        except CardError:
            continue
        assert parsed.to_bytes() == data  # one encoding per value: nothing hides in the bytes


@pytest.mark.parametrize(
    ("layout", "data", "words"),
    [
        (IssuerFile, bytes(31), "32 bytes"),
        (IssuerFile, "00" * 32, "32 bytes"),
        (IssuerFile, bytes.fromhex("02" + V_ISSUER[2:]), "version 2"),
        (IssuerFile, bytes.fromhex(V_ISSUER[:-2] + "01"), "reserved"),
        (IssuerFile, bytes.fromhex(V_ISSUER.replace("3132", "3a32")), "12 ASCII digits"),
        (IssuerFile, bytes.fromhex(V_ISSUER.replace("3132", "ff32")), "not ASCII"),
        (PurchaseRecord, bytes(33), "32 bytes"),
        (WriteBack, bytes.fromhex("02" + "00" * 31), "flag 2"),
        (WriteBack, bytes.fromhex("00" * 20 + "01" + "00" * 11), "reserved"),
        (WriteBack, bytes.fromhex("00" * 31 + "01"), "all zero"),
    ],
)
def test_bad_files_are_refused_with_a_reason(layout: type, data: object, words: str) -> None:
    with pytest.raises(CardError, match=words):
        layout.parse(data)


def test_field_ranges_are_checked() -> None:
    with pytest.raises(CardError, match="purchase count"):
        PurchaseRecord(-1, 0, 0, bytes(8), 0)
    with pytest.raises(CardError, match="amount"):
        PurchaseRecord(0, 1 << 32, 0, bytes(8), 0)
    with pytest.raises(CardError, match="remaining"):
        WriteBack(True, 0, 1 << 31, 0, 0)
    with pytest.raises(CardError, match="flag"):
        WriteBack(1, 0, 0, 0, 0)  # type: ignore[arg-type]
    with pytest.raises(CardError, match="no mac"):
        WriteBack.EMPTY.sign(KEY, ISSUER)
    with pytest.raises(CardError, match="meter number"):
        IssuerFile(SERIAL, bytes(4), "12345")


# -- MACs -------------------------------------------------------------------------------------


def test_every_flipped_bit_breaks_the_purchase_mac() -> None:
    signed = RECORD.sign(KEY, ISSUER).to_bytes()
    for index in range(32):
        damaged = bytearray(signed)
        damaged[index] ^= 0x01
        assert not PurchaseRecord.parse(bytes(damaged)).verify(KEY, ISSUER)


def test_every_flipped_bit_breaks_the_writeback_mac() -> None:
    signed = bytes.fromhex(V_WRITEBACK)
    for index in [*range(1, 17), *range(24, 32)]:  # every byte but the flag and the reserved ones
        damaged = bytearray(signed)
        damaged[index] ^= 0x01
        assert not WriteBack.parse(bytes(damaged)).verify(KEY, ISSUER)


def test_a_record_from_another_master_key_or_for_another_card_does_not_verify() -> None:
    other_key = card_key(vending_master_key(b"another vending secret", BILLER), SERIAL)
    forged = RECORD.sign(other_key, ISSUER)
    assert forged.verify(other_key, ISSUER)
    assert not forged.verify(KEY, ISSUER)
    other_meter = IssuerFile(SERIAL, biller_hash(BILLER), "000099999999")
    assert not RECORD.sign(KEY, other_meter).verify(KEY, ISSUER)  # macs bind the issuer file


# -- keys and builders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: vending_master_key(b"short", BILLER), "at least 16 bytes"),
        (lambda: vending_master_key(SECRET, ""), "biller"),
        (lambda: card_key(MASTER[:15], SERIAL), "master key"),
        (lambda: card_key(MASTER, b"1234567"), "serial"),
        (lambda: purchase_tag(""), "purchase id"),
        (lambda: biller_hash(""), "biller"),
        (lambda: read_binary(4), "short file id"),
        (lambda: read_binary(True), "short file id"),
        (lambda: sm_update(card_key=KEY, challenge=CHALLENGE, seq=0, sfi=2, data=bytes(31)), "32"),
        (lambda: sm_update(card_key=KEY, challenge=bytes(7), seq=0, sfi=2, data=bytes(32)), "8"),
        (lambda: sm_update(card_key=KEY, challenge=CHALLENGE, seq=256, sfi=2, data=bytes(32)), "0"),
    ],
)
def test_bad_arguments_raise_card_error(call, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CardError, match=words):
        call()


# -- responses --------------------------------------------------------------------------------


def test_check_response() -> None:
    assert check_response(bytes.fromhex("abcd9000")) == bytes.fromhex("abcd")
    assert check_response(bytes.fromhex("9000")) == b""
    with pytest.raises(CardStatusError, match=r"6982.*MAC") as refused:
        check_response(bytes.fromhex("6982"))
    assert refused.value.sw == 0x6982
    with pytest.raises(CardStatusError, match="6F00: unexpected"):
        check_response(bytes.fromhex("6f00"))
    with pytest.raises(CardError, match="shorter than a status word"):
        check_response(b"\x90")


@given(st.binary(max_size=300))
def test_check_response_on_any_bytes(rapdu: bytes) -> None:
    try:
        data = check_response(rapdu)
    except CardStatusError as exc:
        assert exc.sw == int.from_bytes(rapdu[-2:], "big") != 0x9000
    except CardError:
        assert len(rapdu) < 2
    else:
        assert rapdu == data + b"\x90\x00"


# -- CardRead ---------------------------------------------------------------------------------


def test_card_read_json_round_trip() -> None:
    read = CardRead(ISSUER.to_bytes(), bytes.fromhex(V_RECORD), bytes(32))
    assert read.to_json() == {"issuer": V_ISSUER, "purchase": V_RECORD, "writeback": "00" * 32}
    assert CardRead.from_json(read.to_json()) == read
    assert CardRead.from_json({k: v.upper() for k, v in read.to_json().items()}) == read


GOOD = {"issuer": V_ISSUER, "purchase": V_RECORD, "writeback": "00" * 32}


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        "issuer",
        {},
        {"issuer": V_ISSUER, "purchase": V_RECORD},
        GOOD | {"extra": "00"},
        GOOD | {"writeback": "00" * 31},
        GOOD | {"writeback": "00" * 33},
        GOOD | {"writeback": "zz" * 32},
        GOOD | {"writeback": " " + "00" * 31 + "0"},  # bytes.fromhex would skip the space
        GOOD | {"writeback": None},
        GOOD | {"writeback": 0},
    ],
)
def test_card_read_from_bad_json(value: object) -> None:
    with pytest.raises(CardError, match="card"):
        CardRead.from_json(value)


def test_card_read_from_bad_bytes() -> None:
    with pytest.raises(CardError, match="32 bytes"):
        CardRead(bytes(32), bytes(32), bytes(31))
