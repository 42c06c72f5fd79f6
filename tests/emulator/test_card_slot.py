"""The dongle's card slot through the real pyusb path: CARD_STATUS and CARD_TRANSMIT against a
virtual purchase card, slot events, removal faults, bad parameters and the cable's card controls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dongle.usblink import DongleLink
from emulator.card import VirtualPurchaseCard, issue_card
from emulator.usb.bus import VirtualBus
from emulator.usb.card_slot import CardRemoval, RemovalMoment
from protocol.card import (
    SFI_ISSUER,
    SFI_PURCHASE,
    SFI_WRITEBACK,
    IssuerFile,
    PurchaseRecord,
    WriteBack,
    card_key,
    check_response,
    get_challenge,
    purchase_tag,
    read_binary,
    write_card_block,
)
from protocol.errors import DongleError
from protocol.messages import MAX_APDU, Command, Status
from tests.fixtures.dongles import ROOT, Provisioned, open_link, running_cable

MASTER = bytes(range(16))
SERIAL = bytes.fromhex("0102030405060708")
METER_NO = "310000000042"
OK = b"\x90\x00"


def _card(path: Path | None = None) -> VirtualPurchaseCard:
    return issue_card(serial=SERIAL, biller="SGCC-SH", meter_no=METER_NO, master=MASTER, path=path)


def _slot(bus: VirtualBus):  # type: ignore[no-untyped-def]
    return bus.dongles()[0].card_slot


def _status(link: DongleLink) -> dict:
    return link.call(Command.CARD_STATUS)


def _transmit(link: DongleLink, apdu: bytes, events: int) -> bytes:
    return link.call(Command.CARD_TRANSMIT, {"apdu": apdu, "slot_events": events})["rapdu"]


def _refusal(link: DongleLink, params: dict) -> DongleError:
    with pytest.raises(DongleError) as caught:
        link.call(Command.CARD_TRANSMIT, params)
    return caught.value


def _block(card: VirtualPurchaseCard, challenge: bytes) -> list[bytes]:
    issuer = IssuerFile.parse(check_response(card.transmit(read_binary(SFI_ISSUER))))
    record = PurchaseRecord(1, 5000, 9_000, purchase_tag("PUR-1"), 1_790_000_000)
    return write_card_block(
        card_key=card_key(MASTER, SERIAL), challenge=challenge, issuer=issuer, record=record
    )


def _count(card: VirtualPurchaseCard) -> int:
    return PurchaseRecord.parse(check_response(card.transmit(read_binary(SFI_PURCHASE)))).count


def test_status_shows_the_card_and_counts_every_insertion_and_removal(
    bus: VirtualBus, link: DongleLink
) -> None:
    assert _status(link) == {"present": False, "slot_events": 0}
    card = _card()
    _slot(bus).insert(card)
    status = _status(link)
    assert status == {"present": True, "atr": card.reset(), "slot_events": 1}
    assert status["atr"].endswith(SERIAL)
    _slot(bus).remove()
    assert _status(link) == {"present": False, "slot_events": 2}
    _slot(bus).insert(card)
    assert _status(link)["slot_events"] == 3


def test_the_card_answers_through_the_slot_without_a_pin_in_any_state(
    bus: VirtualBus, link: DongleLink, provisioned: Provisioned
) -> None:
    # ``provisioned`` locked the dongle and no PIN token was asked for.
    assert link.call(Command.GET_INFO)["state"] == "locked"
    _slot(bus).insert(_card())
    events = _status(link)["slot_events"]
    files = [check_response(_transmit(link, read_binary(sfi), events)) for sfi in (1, 2, 3)]
    assert IssuerFile.parse(files[0]).meter_no == METER_NO
    assert PurchaseRecord.parse(files[1]).count == 0
    assert WriteBack.parse(files[2]) == WriteBack.EMPTY


def test_a_factory_fresh_dongle_reads_the_card_too(bus: VirtualBus, link: DongleLink) -> None:
    assert link.call(Command.GET_INFO)["state"] == "factory"
    _slot(bus).insert(_card())
    rapdu = _transmit(link, read_binary(SFI_ISSUER), _status(link)["slot_events"])
    assert rapdu.endswith(OK) and len(rapdu) == 34


def test_a_write_card_block_runs_through_the_slot(bus: VirtualBus, link: DongleLink) -> None:
    card = _card()
    _slot(bus).insert(card)
    events = _status(link)["slot_events"]
    challenge = check_response(_transmit(link, get_challenge(), events))
    for apdu in _block(card, challenge):
        assert _transmit(link, apdu, events) == OK
    assert _count(card) == 1


def test_no_card_is_card_absent(link: DongleLink) -> None:
    refusal = _refusal(link, {"apdu": read_binary(SFI_ISSUER), "slot_events": 0})
    assert refusal.status == Status.CARD_ABSENT
    assert refusal.body["slot_events"] == 0


def test_a_stale_slot_event_is_card_changed_and_nothing_reaches_the_card(
    bus: VirtualBus, link: DongleLink
) -> None:
    card = _card()
    _slot(bus).insert(card)
    events = _status(link)["slot_events"]
    challenge = check_response(_transmit(link, get_challenge(), events))
    first, second = _block(card, challenge)
    refusal = _refusal(link, {"apdu": first, "slot_events": events - 1})
    assert refusal.status == Status.CARD_CHANGED
    assert refusal.body["slot_events"] == events
    # Had the refused UPDATE reached the card, its session would be at seq 1 and this same
    # APDU (MAC'ed for seq 0) would be refused with 6982.
    assert _transmit(link, first, events) == OK
    assert _transmit(link, second, events) == OK


def test_the_same_card_put_back_is_card_changed(bus: VirtualBus, link: DongleLink) -> None:
    card = _card()
    _slot(bus).insert(card)
    events = _status(link)["slot_events"]
    _slot(bus).remove()
    _slot(bus).insert(card)
    refusal = _refusal(link, {"apdu": read_binary(SFI_ISSUER), "slot_events": events})
    assert refusal.status == Status.CARD_CHANGED


def test_replugging_the_dongle_resets_the_card_and_counts_as_a_slot_event(
    bus_and_backend,  # type: ignore[no-untyped-def]
) -> None:
    bus, backend = bus_and_backend
    card = _card()
    _slot(bus).insert(card)
    serial = bus.dongles()[0].serial
    with open_link(backend) as link:
        events = _status(link)["slot_events"]
        challenge = check_response(_transmit(link, get_challenge(), events))
        first, _ = _block(card, challenge)
    bus.unplug(serial)
    bus.plug(serial)
    with open_link(backend) as link:
        after = _status(link)["slot_events"]
        assert after == events + 1
        assert _refusal(link, {"apdu": first, "slot_events": events}).status == Status.CARD_CHANGED
        # The card was reset at power-up: the old session is gone on the card itself too.
        assert _transmit(link, first, after) == b"\x69\x85"


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"slot_events": 1}, id="apdu-missing"),
        pytest.param({"apdu": "00b0810020", "slot_events": 1}, id="apdu-text"),
        pytest.param({"apdu": b"\x00\xb0\x81", "slot_events": 1}, id="apdu-3-bytes"),
        pytest.param({"apdu": bytes(MAX_APDU + 1), "slot_events": 1}, id="apdu-262-bytes"),
        pytest.param({"apdu": read_binary(1)}, id="events-missing"),
        pytest.param({"apdu": read_binary(1), "slot_events": -1}, id="events-negative"),
        pytest.param({"apdu": read_binary(1), "slot_events": True}, id="events-bool"),
        pytest.param({"apdu": read_binary(1), "slot_events": "1"}, id="events-text"),
    ],
)
def test_bad_parameters_are_invalid_parameter_and_nothing_reaches_the_card(
    bus: VirtualBus, link: DongleLink, params: dict
) -> None:
    card = _card()
    _slot(bus).insert(card)
    challenge = check_response(_transmit(link, get_challenge(), 1))
    refusal = _refusal(link, params)
    assert refusal.status == Status.INVALID_PARAMETER
    assert "'apdu'" in str(refusal) or "'slot_events'" in str(refusal)
    first, _ = _block(card, challenge)
    assert _transmit(link, first, 1) == OK  # the session was not disturbed


def test_the_longest_and_shortest_apdus_reach_the_card(bus: VirtualBus, link: DongleLink) -> None:
    _slot(bus).insert(_card())
    # The card judges them (wrong length, unknown instruction); the slot only carries them.
    assert len(_transmit(link, bytes(MAX_APDU), 1)) == 2
    assert len(_transmit(link, b"\x00\xca\x00\x00", 1)) == 2


# -- the household pulls the card out during a write-card block (APDU 1 = GET CHALLENGE) ----------


def _run_block_with_removal(
    bus: VirtualBus, link: DongleLink, moment: RemovalMoment, apdu: int
) -> tuple[VirtualPurchaseCard, list[bytes | int]]:
    """Run GET CHALLENGE and the block's two UPDATEs with a removal armed; each step's answer, or
    the status the dongle refused it with."""
    card = _card()
    _slot(bus).insert(card)
    events = _status(link)["slot_events"]
    _slot(bus).arm_removal(CardRemoval(moment, apdu))
    outcomes: list[bytes | int] = []
    try:
        challenge = check_response(_transmit(link, get_challenge(), events))
        outcomes.append(OK)
        for step in _block(card, challenge):
            outcomes.append(_transmit(link, step, events))
    except DongleError as exc:
        outcomes.append(exc.status)
    return card, outcomes


def test_a_card_pulled_before_an_apdu_never_gets_it(bus: VirtualBus, link: DongleLink) -> None:
    card, outcomes = _run_block_with_removal(bus, link, RemovalMoment.BEFORE, 3)
    assert outcomes == [OK, OK, Status.CARD_ABSENT]
    assert _status(link)["present"] is False
    assert _count(card) == 0  # the write-back was cleared, the purchase never written


def test_a_card_pulled_while_it_answers_ran_the_apdu_but_the_answer_is_lost(
    bus: VirtualBus, link: DongleLink
) -> None:
    card, outcomes = _run_block_with_removal(bus, link, RemovalMoment.DURING, 3)
    assert outcomes == [OK, OK, Status.CARD_ABSENT]
    assert _status(link) == {"present": False, "slot_events": 2}
    assert _count(card) == 1  # the host must read the card again to learn this


def test_a_card_pulled_after_an_answer_delivers_that_answer(
    bus: VirtualBus, link: DongleLink
) -> None:
    card, outcomes = _run_block_with_removal(bus, link, RemovalMoment.AFTER, 3)
    assert outcomes == [OK, OK, OK]
    assert _status(link)["present"] is False
    assert _count(card) == 1
    refusal = _refusal(link, {"apdu": read_binary(SFI_WRITEBACK), "slot_events": 1})
    assert refusal.status == Status.CARD_ABSENT


def test_clearing_the_dongle_faults_disarms_a_removal_and_the_card_keeps_its_own_file(
    bus: VirtualBus, link: DongleLink, tmp_path: Path
) -> None:
    path = tmp_path / "card.json"
    card = _card(path)
    _slot(bus).insert(card)
    _slot(bus).arm_removal(CardRemoval(RemovalMoment.BEFORE, 1))
    bus.dongles()[0].clear_faults()
    challenge = check_response(_transmit(link, get_challenge(), 1))
    for step in _block(card, challenge):
        assert _transmit(link, step, 1) == OK
    assert _count(VirtualPurchaseCard.load(path)) == 1


# -- the cable's card controls, as a developer uses them --------------------------------------


def _cable(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "emulator.cli", "cable", "--address", address, "card", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_cable_card_commands_move_a_card_file_in_and_out_of_the_slot(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    _card(path)
    with running_cable(1) as cable:
        serial = cable.serials[0]
        inserted = _cable(cable.address, "insert", serial, str(path))
        assert inserted.returncode == 0, inserted.stderr
        assert inserted.stdout.strip() == f"atr={_card().reset().hex()}"
        status = json.loads(_cable(cable.address, "status", serial).stdout)
        assert status["present"] is True and status["card"] == str(path)
        assert status["slot_events"] == 1

        again = _cable(cable.address, "insert", serial, str(path))
        assert again.returncode == 1
        assert "is in dongle" in again.stderr and "remove it first" in again.stderr

        armed = _cable(cable.address, "fault", serial, "during", "3")
        assert armed.returncode == 0, armed.stderr
        with open_link(cable.backend()) as link:
            card = VirtualPurchaseCard.load(path)  # a copy, to build the block with
            challenge = check_response(_transmit(link, get_challenge(), 1))
            first, second = _block(card, challenge)
            assert _transmit(link, first, 1) == OK
            with pytest.raises(DongleError) as caught:
                _transmit(link, second, 1)
            assert caught.value.status == Status.CARD_ABSENT
        assert _count(VirtualPurchaseCard.load(path)) == 1  # written to the card's file
        status = json.loads(_cable(cable.address, "status", serial).stdout)
        assert status["present"] is False and status["card"] is None

        assert _cable(cable.address, "insert", serial, str(path)).returncode == 0
        removed = _cable(cable.address, "remove", serial)
        assert removed.stdout.strip() == f"card={path}"


def test_cable_card_insert_of_a_file_that_is_no_card_says_so(tmp_path: Path) -> None:
    not_a_card = tmp_path / "notes.txt"
    not_a_card.write_text("hello", encoding="utf-8")
    with running_cable(1) as cable:
        serial = cable.serials[0]
        missing = _cable(cable.address, "insert", serial, str(tmp_path / "absent.json"))
        assert missing.returncode == 1 and "cannot read the card file" in missing.stderr
        wrong = _cable(cable.address, "insert", serial, str(not_a_card))
        assert wrong.returncode == 1 and "is not a purchase card file" in wrong.stderr
        bad_moment = _cable(cable.address, "fault", serial, "after", "0")
        assert bad_moment.returncode == 1 and "counts from 1" in bad_moment.stderr
        assert json.loads(_cable(cable.address, "status", serial).stdout)["slot_events"] == 0


class _HostileCard:
    """A card that is not a purchase card: it answers without a status word, or too much."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def reset(self) -> bytes:
        return b"\x3b\x00"

    def transmit(self, apdu: bytes) -> bytes:
        return self.answer


@pytest.mark.parametrize("answer", [b"", b"\x90", bytes(257) + OK], ids=["empty", "1-byte", "259"])
def test_an_answer_that_is_no_response_apdu_is_not_relayed(
    bus: VirtualBus, link: DongleLink, answer: bytes
) -> None:
    _slot(bus).insert(_HostileCard(answer))
    refusal = _refusal(link, {"apdu": read_binary(SFI_ISSUER), "slot_events": 1})
    assert refusal.status == Status.OTHER
    assert f"the card answered {len(answer)} bytes" in str(refusal)
    assert _status(link)["present"] is True  # the dongle keeps working
