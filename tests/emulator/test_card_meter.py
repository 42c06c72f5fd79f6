"""The virtual purchase card and the virtual IC-card meter, driven only by APDUs.

The test plays the vending side where one is needed: it reads the card's files with READ BINARY,
opens a session with GET CHALLENGE and sends write-card blocks built by protocol/card.py.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.card import CardImageError, CardImageExists, VirtualPurchaseCard, issue_card
from emulator.meters.card_meter import Outcome, Refusal, VirtualCardMeter
from emulator.meters.card_meter_state import CardMeterStateError
from protocol.card import (
    SFI_ISSUER,
    SFI_PURCHASE,
    SFI_WRITEBACK,
    CardRead,
    IssuerFile,
    PurchaseRecord,
    WriteBack,
    card_key,
    check_response,
    get_challenge,
    purchase_tag,
    read_binary,
    sm_update,
    vending_master_key,
    write_card_block,
)

BILLER = "SGCC-BJ"
MASTER = vending_master_key(bytes(range(32)), BILLER)
OTHER_MASTER = vending_master_key(b"a different vending secret", BILLER)
SERIAL = bytes.fromhex("0102030405060708")
METER_NO = "000012345678"
NOW = 1_700_000_000
ALL_SWS = {0x9000, 0x6581, 0x6700, 0x6982, 0x6985, 0x6A82, 0x6A86, 0x6D00, 0x6E00}


def new_card(path: Path | None = None, master: bytes = MASTER) -> VirtualPurchaseCard:
    return issue_card(serial=SERIAL, biller=BILLER, meter_no=METER_NO, master=master, path=path)


def new_meter(state_path: Path | None = None) -> VirtualCardMeter:
    return VirtualCardMeter(METER_NO, MASTER, state_path, clock=lambda: NOW)


def sw(rapdu: bytes) -> int:
    return int.from_bytes(rapdu[-2:], "big")


def read(card: VirtualPurchaseCard) -> CardRead:
    files = [check_response(card.transmit(read_binary(sfi))) for sfi in (1, 2, 3)]
    return CardRead(*files)


def challenge(card: VirtualPurchaseCard) -> bytes:
    return check_response(card.transmit(get_challenge()))


def block_for(
    card: VirtualPurchaseCard, count: int, amount_fen: int = 5000, master: bytes = MASTER
) -> list[bytes]:
    """What the vending side answers for this card: a block writing purchase ``count``."""
    issuer = IssuerFile.parse(read(card).issuer)
    record = PurchaseRecord(count, amount_fen, 8923, purchase_tag(f"PUR-{count}"), NOW)
    key = card_key(master, issuer.serial)
    return write_card_block(card_key=key, challenge=challenge(card), issuer=issuer, record=record)


def run(card: VirtualPurchaseCard, apdus: list[bytes]) -> list[int]:
    return [sw(card.transmit(apdu)) for apdu in apdus]


def buy(card: VirtualPurchaseCard, count: int, amount_fen: int = 5000) -> None:
    assert run(card, block_for(card, count, amount_fen)) == [0x9000, 0x9000]


def update(sfi: int, data: bytes, seq: int, chal: bytes) -> bytes:
    key = card_key(MASTER, SERIAL)
    return sm_update(card_key=key, challenge=chal, seq=seq, sfi=sfi, data=data)


# -- the card's APDU parser -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apdu", "expected"),
    [
        ("", 0x6700),
        ("00b081", 0x6700),
        ("80b0810020", 0x6E00),
        ("ffb0810020", 0x6E00),
        ("04b0810020", 0x6E00),  # READ BINARY is never secure-messaged
        ("0484000008", 0x6E00),
        ("00a4040000", 0x6D00),  # SELECT: not a command of this card
        ("00b0810000", 0x6700),  # Le must be 32
        ("00b081002000", 0x6700),
        ("00b08100", 0x6700),
        ("00b0810120", 0x6A86),  # offsets are not supported
        ("00b0010020", 0x6A86),  # no current EF: P1 must name a file
        ("00b0c10020", 0x6A86),
        ("00b0840020", 0x6A82),
        ("00b0800020", 0x6A82),
        ("0084000010", 0x6700),
        ("00840000", 0x6700),
        ("0084010008", 0x6A86),
        ("04d682002400", 0x6700),
        ("04d6820024" + "00" * 35, 0x6700),
        ("04d6820023" + "00" * 36, 0x6700),
        ("04d6820124" + "00" * 36, 0x6A86),
        ("04d6850024" + "00" * 36, 0x6A82),
        ("04d6820024" + "00" * 36, 0x6985),  # no challenge yet
        ("00d6820024" + "00" * 36, 0x6982),  # no secure messaging
    ],
)
def test_malformed_apdus_get_the_right_status_word(apdu: str, expected: int) -> None:
    card = new_card()
    before = read(card)
    assert card.transmit(bytes.fromhex(apdu)) == expected.to_bytes(2, "big")
    assert read(card) == before


@settings(max_examples=500)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.tuples(
                st.sampled_from([0x00, 0x04, 0x80]),
                st.sampled_from([0x84, 0xB0, 0xD6, 0xA4]),
                st.integers(0, 255),
                st.integers(0, 255),
                st.binary(max_size=40),
            ).map(lambda t: bytes(t[:4]) + t[4]),
        ),
        max_size=8,
    )
)
def test_random_apdus_get_a_status_word_and_change_nothing(apdus: list[bytes]) -> None:
    card = new_card()
    before = read(card)
    for apdu in apdus:
        rapdu = card.transmit(apdu)
        assert sw(rapdu) in ALL_SWS
        assert sw(rapdu) == 0x9000 or len(rapdu) == 2
    assert read(card) == before


def test_the_answer_to_reset_names_the_card() -> None:
    assert new_card().reset() == bytes.fromhex("3b6c0000") + b"TVPC" + SERIAL


# -- secure messaging -------------------------------------------------------------------------


def test_one_session_per_challenge_and_seq_counts_updates() -> None:
    card = new_card()
    chal = challenge(card)
    clear = update(SFI_WRITEBACK, bytes(32), 0, chal)
    assert sw(card.transmit(clear)) == 0x9000
    assert sw(card.transmit(clear)) == 0x6982  # seq is now 1: the same APDU again is a replay
    # ...and the replay ended the session: even a correct next APDU is refused
    assert sw(card.transmit(update(SFI_WRITEBACK, bytes(32), 1, chal))) == 0x6985


def test_a_wrong_mac_ends_the_session_and_writes_nothing() -> None:
    card = new_card()
    before = read(card)
    apdus = block_for(card, 1)
    forged = apdus[1][:-1] + bytes([apdus[1][-1] ^ 1])
    assert sw(card.transmit(forged)) == 0x6982
    assert read(card) == before
    assert run(card, apdus) == [0x6985, 0x6985]
    assert read(card) == before


def test_a_block_from_another_master_key_is_refused_by_the_card() -> None:
    card = new_card()
    before = read(card)
    assert run(card, block_for(card, 1, master=OTHER_MASTER)) == [0x6982, 0x6985]
    assert read(card) == before


def test_the_issuer_file_is_never_writable() -> None:
    card = new_card()
    before = read(card)
    other = IssuerFile(SERIAL, bytes(4), "000099999999").to_bytes()
    assert sw(card.transmit(update(SFI_ISSUER, other, 0, challenge(card)))) == 0x6982
    assert read(card) == before


def test_a_block_is_useless_after_reset_or_a_new_challenge() -> None:
    card = new_card()
    before = read(card)
    old_block = block_for(card, 1)
    card.reset()
    assert run(card, old_block) == [0x6985, 0x6985]
    challenge(card)
    assert run(card, old_block) == [0x6982, 0x6985]
    assert read(card) == before


def test_reads_do_not_disturb_a_session() -> None:
    card = new_card()
    apdus = block_for(card, 1)
    assert sw(card.transmit(apdus[0])) == 0x9000
    read(card)
    assert sw(card.transmit(apdus[1])) == 0x9000
    assert PurchaseRecord.parse(read(card).purchase).count == 1


# -- the card's file --------------------------------------------------------------------------


def test_the_card_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = new_card(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the card key
    buy(card, 1)
    again = VirtualPurchaseCard.load(path)
    assert again.serial == SERIAL
    assert read(again) == read(card)
    assert PurchaseRecord.parse(read(again).purchase).count == 1
    assert run(again, block_for(card, 2)) == [0x6985, 0x6985]  # a session does not survive


def test_issuing_over_an_existing_card_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    buy(new_card(path), 1)
    with pytest.raises(CardImageExists, match="already exists"):
        new_card(path)
    assert PurchaseRecord.parse(read(VirtualPurchaseCard.load(path)).purchase).count == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "not a purchase card file"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "not a purchase card file"),
        (b'{"format": "tvpay-card/1"}', "files must hold"),
        (b"MISSING", "cannot read"),
    ],
)
def test_a_damaged_card_file_is_refused(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "card.json"
    if content != b"MISSING":
        path.write_bytes(content)
    with pytest.raises(CardImageError, match=words):
        VirtualPurchaseCard.load(path)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("serial", "0102", "serial must be 8 bytes"),
        ("card_key", "XX" * 16, "card_key must be 16 bytes"),
        ("files.writeback", "00" * 31, "files.writeback must be 32 bytes"),
    ],
)
def test_a_card_file_with_a_bad_field_is_refused(
    tmp_path: Path, field: str, value: str, words: str
) -> None:
    path = tmp_path / "card.json"
    new_card(path)
    record = json.loads(path.read_text())
    if field.startswith("files."):
        record["files"][field.removeprefix("files.")] = value
    else:
        record[field] = value
    path.write_text(json.dumps(record))
    with pytest.raises(CardImageError, match=words):
        VirtualPurchaseCard.load(path)


def test_a_failed_save_answers_memory_failure_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = new_card(path)
    before = read(card)
    apdus = block_for(card, 1)
    (tmp_path / "card.json.tmp").mkdir()  # the save's temporary file cannot be created
    assert run(card, apdus) == [0x6581, 0x6985]
    assert read(card) == before
    assert read(VirtualPurchaseCard.load(path)) == before


def _buy_with_file_size_limit(path: Path, limit: int) -> int:
    """In a child process whose files may grow to ``limit`` bytes only (the kernel kills it with
    SIGXFSZ at the first byte written past it: the power cut), load the card and write purchase 1
    on it. The child's wait status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        code = 1
        try:
            card = VirtualPurchaseCard.load(path)
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            buy(card, 1)
            code = 0
        finally:
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def test_power_cut_during_a_save_leaves_the_old_file_or_the_new(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = new_card(path)
    new_meter().insert(card)  # a full write-back, so clearing it changes the file too
    old_file = path.read_bytes()
    old = read(card)
    buy(card, 1)
    new = read(card)
    outcomes = set()
    for limit in range(len(old_file) + 1):  # the power goes after every possible byte count
        path.write_bytes(old_file)
        status = _buy_with_file_size_limit(path, limit)
        survivor = read(VirtualPurchaseCard.load(path))  # raises CardImageError if torn
        if os.WIFSIGNALED(status):
            assert os.WTERMSIG(status) == signal.SIGXFSZ
            assert survivor == old
            outcomes.add("cut")
        else:
            assert os.WEXITSTATUS(status) == 0
            assert survivor == new
            outcomes.add("done")
    assert outcomes == {"cut", "done"}  # the cuts did land inside saves, and saves did finish


# -- the meter --------------------------------------------------------------------------------


def test_rule_count_plus_one_with_empty_writeback_credits_once() -> None:
    card, meter = new_card(), new_meter()
    buy(card, 1, 5000)
    outcome = meter.insert(card)
    assert (outcome.outcome, outcome.amount_fen, outcome.written_back) == (
        Outcome.CREDITED,
        5000,
        True,
    )
    assert (meter.count, meter.balance_fen) == (1, 5000)
    again = meter.insert(card)
    assert (again.outcome, again.amount_fen) == (Outcome.NOTHING, 0)
    assert meter.balance_fen == 5000


def test_rule_equal_count_is_nothing_but_still_writes_back() -> None:
    card, meter = new_card(), new_meter()
    outcome = meter.insert(card)
    assert outcome.outcome == Outcome.NOTHING
    assert outcome.written_back
    report = WriteBack.parse(read(card).writeback)
    key = card_key(MASTER, SERIAL)
    assert report.verify(key, IssuerFile.parse(read(card).issuer))
    assert (report.full, report.meter_count, report.remaining_fen, report.at) == (True, 0, 0, NOW)


def test_rule_count_two_ahead_is_a_count_error() -> None:
    card, meter = new_card(), new_meter()
    buy(card, 2)
    outcome = meter.insert(card)
    assert (outcome.outcome, outcome.reason) == (Outcome.REFUSED, Refusal.COUNT_ERROR)
    assert "purchase count error" in outcome.message
    assert (meter.count, meter.balance_fen) == (0, 0)
    assert outcome.written_back  # the meter still reports, so the vending side can see why


def test_rule_lower_count_is_ignored() -> None:
    card, meter = new_card(), new_meter()
    buy(card, 1)
    meter.insert(card)
    buy(card, 2)
    meter.insert(card)
    older = new_card()  # a copy of the card as it was at purchase 1
    buy(older, 1)
    outcome = meter.insert(older)
    assert (outcome.outcome, outcome.reason) == (Outcome.NOTHING, None)
    assert "older" in outcome.message
    assert (meter.count, meter.balance_fen) == (2, 10000)


def test_rule_count_plus_one_with_full_writeback_is_refused() -> None:
    card, meter = new_card(), new_meter()
    meter.insert(card)  # the meter reports: the write-back is now full
    key = card_key(MASTER, SERIAL)
    issuer = IssuerFile.parse(read(card).issuer)
    record = PurchaseRecord(1, 5000, 8923, purchase_tag("PUR-1"), NOW).sign(key, issuer)
    # purchase 1 written without clearing the write-back first (a vending side that never read it)
    apdu = update(SFI_PURCHASE, record.to_bytes(), 0, challenge(card))
    assert sw(card.transmit(apdu)) == 0x9000
    assert PurchaseRecord.parse(read(card).purchase).count == 1
    outcome = meter.insert(card)
    assert (outcome.outcome, outcome.reason) == (Outcome.REFUSED, Refusal.WRITEBACK_NOT_READ)
    assert (meter.count, meter.balance_fen) == (0, 0)


def test_a_card_of_another_meter_is_refused_and_left_alone() -> None:
    card = issue_card(
        serial=SERIAL, biller=BILLER, meter_no="000099999999", master=MASTER, path=None
    )
    buy(card, 1)
    before = read(card)
    meter = new_meter()
    outcome = meter.insert(card)
    assert (outcome.outcome, outcome.reason) == (Outcome.REFUSED, Refusal.WRONG_METER)
    assert "000099999999" in outcome.message
    assert not outcome.written_back
    assert read(card) == before
    assert (meter.count, meter.balance_fen) == (0, 0)


def test_a_card_written_with_another_master_key_is_refused() -> None:
    card, meter = new_card(master=OTHER_MASTER), new_meter()
    assert run(card, block_for(card, 1, master=OTHER_MASTER)) == [0x9000, 0x9000]
    before = read(card)
    outcome = meter.insert(card)
    assert (outcome.outcome, outcome.reason) == (Outcome.REFUSED, Refusal.NOT_AUTHENTIC)
    assert not outcome.written_back
    assert read(card) == before
    assert (meter.count, meter.balance_fen) == (0, 0)
    issuer = IssuerFile.parse(before.issuer)
    assert not PurchaseRecord.parse(before.purchase).verify(card_key(MASTER, SERIAL), issuer)


class AnsweringCard:
    """Card contacts that answer READ BINARY with the given files and refuse everything else."""

    def __init__(self, files: CardRead) -> None:
        self.files = (files.issuer, files.purchase, files.writeback)
        self.sent: list[bytes] = []

    def reset(self) -> bytes:
        return b"\x3b\x00"

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        if apdu[:2] == b"\x00\xb0":
            return self.files[(apdu[2] & 0x1F) - 1] + b"\x90\x00"
        return b"\x6d\x00"


@pytest.mark.parametrize(
    "damage",
    [
        lambda r: CardRead(r.issuer, r.purchase[:4] + b"\xff" + r.purchase[5:], r.writeback),
        lambda r: CardRead(r.issuer, r.purchase, b"\x01" + bytes(31)),  # full, no mac
        lambda r: CardRead(r.issuer, r.purchase, b"\x07" + bytes(31)),  # not a write-back
        lambda r: CardRead(b"\x09" + r.issuer[1:], r.purchase, r.writeback),
    ],
)
def test_tampered_card_data_is_not_authentic(damage) -> None:  # type: ignore[no-untyped-def]
    card = new_card()
    buy(card, 1)
    forged = AnsweringCard(damage(read(card)))
    meter = new_meter()
    outcome = meter.insert(forged)
    assert (outcome.outcome, outcome.reason) == (Outcome.REFUSED, Refusal.NOT_AUTHENTIC)
    assert all(apdu[1] == 0xB0 for apdu in forged.sent)  # nothing but reads
    assert (meter.count, meter.balance_fen) == (0, 0)


def test_a_card_that_does_not_answer_is_not_authentic() -> None:
    class Mute:
        def reset(self) -> bytes:
            return b""

        def transmit(self, apdu: bytes) -> bytes:
            return b"\x6a\x82"

    outcome = new_meter().insert(Mute())
    assert (outcome.outcome, outcome.reason) == (Outcome.REFUSED, Refusal.NOT_AUTHENTIC)
    assert "6A82" in outcome.message


def test_a_write_interrupted_between_the_two_apdus() -> None:
    card, meter = new_card(), new_meter()
    meter.insert(card)  # the write-back is full
    block = block_for(card, 1)
    assert sw(card.transmit(block[0])) == 0x9000  # write-back cleared...
    card.reset()  # ...and the card pulled out before the purchase record
    assert WriteBack.parse(read(card).writeback) == WriteBack.EMPTY
    assert PurchaseRecord.parse(read(card).purchase).count == 0
    outcome = meter.insert(card)
    assert (outcome.outcome, outcome.reason) == (Outcome.NOTHING, None)
    assert (meter.count, meter.balance_fen) == (0, 0)
    assert sw(card.transmit(block[1])) == 0x6982  # the rest of the old block is useless
    buy(card, 1)  # a fresh session writes the whole block
    credited = meter.insert(card)
    assert (credited.outcome, credited.amount_fen) == (Outcome.CREDITED, 5000)


def test_consumption_lowers_the_balance_and_is_reported() -> None:
    card, meter = new_card(), new_meter()
    buy(card, 1, 5000)
    meter.insert(card)
    meter.consume(1000)  # 1 kWh at 56030 milli-fen/kWh = 56.03 fen, charged as 57
    assert (meter.total_used_wh, meter.balance_fen) == (1000, 4943)
    meter.consume(100_000)  # 100 kWh more: 5659.03 fen in all, so 5660
    assert meter.balance_fen == 5000 - 5660
    meter.insert(card)
    report = WriteBack.parse(read(card).writeback)
    assert (report.meter_count, report.remaining_fen, report.total_used_wh) == (1, -660, 101_000)
    with pytest.raises(ValueError, match="non-negative"):
        meter.consume(-1)


def test_the_meter_remembers_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "meter.json"
    card, meter = new_card(), new_meter(state)
    buy(card, 1, 5000)
    meter.insert(card)
    meter.consume(1000)
    again = new_meter(state)
    assert (again.count, again.balance_fen, again.total_used_wh) == (1, 4943, 1000)
    assert again.insert(card).outcome == Outcome.NOTHING  # credited once, across the restart
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{", "not a card meter state file"),
        ('{"format": "tvpay-card-meter/1", "meter_no": "000099999999"}', "another meter"),
        (
            '{"format": "tvpay-card-meter/1", "meter_no": "000012345678", "count": -1,'
            ' "credited_fen": 0, "total_used_wh": 0}',
            "count must be",
        ),
    ],
)
def test_a_damaged_meter_state_is_refused(tmp_path: Path, content: str, words: str) -> None:
    state = tmp_path / "meter.json"
    state.write_text(content)
    with pytest.raises(CardMeterStateError, match=words):
        new_meter(state)


def test_a_meter_needs_a_meter_number_and_a_key() -> None:
    with pytest.raises(ValueError, match="12 ASCII digits"):
        VirtualCardMeter("12345", MASTER)
    with pytest.raises(ValueError, match="16 bytes"):
        VirtualCardMeter(METER_NO, b"short")
