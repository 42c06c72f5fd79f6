"""The card slot through tvpay-dongled: ``card_status`` and ``card_transmit`` from the client
library and ``dongle.card``, for a household user, with the usual access rules, leases and typed
errors, against a real daemon process, the virtual cable and a virtual purchase card file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dongle.card import card_challenge, read_card, run_block
from dongle.client import DaemonClient
from dongle.errors import BadRequest, CardAbsent, CardChanged, DongleBusy
from emulator.card import VirtualPurchaseCard, issue_card
from protocol.card import (
    CardError,
    CardStatusError,
    IssuerFile,
    PurchaseRecord,
    WriteBack,
    card_key,
    check_response,
    purchase_tag,
    read_binary,
    write_card_block,
)
from protocol.errors import DongleError
from protocol.messages import Status
from tests.daemon.conftest import NOBODY, DaemonProcess, run_as, start_daemon
from tests.fixtures.dongles import CableProcess

MASTER = bytes(range(16))
SERIAL = bytes.fromhex("0a0b0c0d0e0f1011")
METER_NO = "310000000077"


@pytest.fixture
def card_file(workdir: Path) -> Path:
    path = workdir / "card.json"
    issue_card(serial=SERIAL, biller="SGCC-SH", meter_no=METER_NO, master=MASTER, path=path)
    return path


@pytest.fixture
def inserted(cable: CableProcess, card_file: Path) -> Iterator[Path]:
    with cable.control() as control:
        control.card_insert(cable.serials[0], card_file)
    yield card_file


def _block(read_issuer: bytes, challenge: bytes, count: int) -> list[bytes]:
    record = PurchaseRecord(count, 10_000, 17_800, purchase_tag(f"PUR-{count}"), 1_790_000_000)
    return write_card_block(
        card_key=card_key(MASTER, SERIAL),
        challenge=challenge,
        issuer=IssuerFile.parse(read_issuer),
        record=record,
    )


def _purchase_a_card(client: DaemonClient) -> int:
    """What the box does for a card purchase: read, open a session, write, read back."""
    slot = client.card_status()
    before = read_card(client, slot.slot_events)
    challenge = card_challenge(client, slot.slot_events)
    count = PurchaseRecord.parse(before.purchase).count + 1
    run_block(client, _block(before.issuer, challenge, count), slot.slot_events)
    after = read_card(client, slot.slot_events)
    assert WriteBack.parse(after.writeback) == WriteBack.EMPTY
    return PurchaseRecord.parse(after.purchase).count


def test_a_box_reads_and_writes_the_card_through_the_daemon(
    client: DaemonClient, inserted: Path
) -> None:
    slot = client.card_status()
    assert slot.present and slot.slot_events == 1
    assert slot.atr.endswith(SERIAL)
    assert IssuerFile.parse(read_card(client).issuer).meter_no == METER_NO
    assert _purchase_a_card(client) == 1
    # the card's own file, not the daemon or the dongle, holds the purchase
    kept = VirtualPurchaseCard.load(inserted).transmit(read_binary(2))
    assert PurchaseRecord.parse(check_response(kept)).count == 1


@pytest.fixture
def household_daemon(workdir: Path, cable: CableProcess) -> Iterator[DaemonProcess]:
    (workdir / "dongled.toml").write_text('[access]\nusers = ["nobody"]\n')
    daemon = start_daemon(workdir, cable, "--socket-mode", "0666")
    try:
        yield daemon
    finally:
        daemon.stop()


def test_a_household_user_may_use_the_card_slot(
    household_daemon: DaemonProcess, inserted: Path
) -> None:
    path = household_daemon.socket_path
    outcome, detail = run_as(NOBODY, lambda: _purchase_a_card(DaemonClient(path, timeout=10)))
    assert (outcome, detail) == ("ok", "1")


def test_a_foreign_user_is_refused_as_for_other_operations(
    workdir: Path, cable: CableProcess, inserted: Path
) -> None:
    daemon = start_daemon(workdir, cable, "--socket-mode", "0666")
    try:
        outcome, detail = run_as(NOBODY, lambda: DaemonClient(daemon.socket_path).card_status())
        assert outcome == "AccessDenied"
        assert f"user {NOBODY} may not use the payment dongle" in detail
        outcome, _ = run_as(
            NOBODY,
            lambda: DaemonClient(daemon.socket_path).card_transmit(read_binary(1), 1),
        )
        assert outcome == "AccessDenied"
    finally:
        daemon.stop()


def test_no_card_is_card_absent_with_its_advice(client: DaemonClient) -> None:
    assert client.card_status().present is False
    with pytest.raises(CardAbsent) as caught:
        client.card_transmit(read_binary(1), 0)
    assert caught.value.status == Status.CARD_ABSENT
    assert "insert the purchase card" in str(caught.value)
    with pytest.raises(CardAbsent):
        read_card(client)


def test_a_card_swapped_between_reads_is_card_changed(
    client: DaemonClient, cable: CableProcess, inserted: Path
) -> None:
    events = client.card_status().slot_events
    read_card(client, events)
    with cable.control() as control:
        control.card_remove(cable.serials[0])
        control.card_insert(cable.serials[0], inserted)
    with pytest.raises(CardChanged) as caught:
        card_challenge(client, events)
    assert isinstance(caught.value, DongleError)  # callers that catch every dongle refusal
    assert "start again" in str(caught.value)
    assert read_card(client).issuer  # a fresh read of the card now in the slot works


def test_a_card_pulled_during_the_block_gives_card_absent_and_the_read_back_tells(
    client: DaemonClient, cable: CableProcess, inserted: Path
) -> None:
    slot = client.card_status()
    before = read_card(client, slot.slot_events)
    challenge = card_challenge(client, slot.slot_events)
    with cable.control() as control:
        control.card_fault(cable.serials[0], "during", 2)  # the second UPDATE runs, answer lost
        block = _block(before.issuer, challenge, 1)
        with pytest.raises(CardAbsent):
            run_block(client, block, slot.slot_events)
        assert client.card_status().present is False
        control.card_insert(cable.serials[0], inserted)
    assert PurchaseRecord.parse(read_card(client).purchase).count == 1


def test_the_card_refusing_an_apdu_stops_the_block(client: DaemonClient, inserted: Path) -> None:
    slot = client.card_status()
    before = read_card(client, slot.slot_events)
    # no session was opened: the card refuses the first UPDATE and run_block stops there
    with pytest.raises(CardStatusError) as caught:
        run_block(client, _block(before.issuer, bytes(8), 1), slot.slot_events)
    assert caught.value.sw in (0x6982, 0x6985)
    assert read_card(client, slot.slot_events) == before


@pytest.mark.parametrize(
    "apdus",
    [
        pytest.param([b"\x00\xb0"], id="too-short"),
        pytest.param([read_binary(1), bytes(262)], id="too-long"),
        pytest.param([read_binary(1), "00b0810020"], id="text"),
    ],
)
def test_a_malformed_block_sends_nothing(client: DaemonClient, inserted: Path, apdus: list) -> None:
    slot = client.card_status()
    challenge = card_challenge(client, slot.slot_events)
    with pytest.raises(CardError):
        run_block(client, apdus, slot.slot_events)
    # nothing reached the card: the session of that challenge is still open at seq 0
    run_block(client, _block(read_card(client).issuer, challenge, 1), slot.slot_events)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param({"apdu": "00b0810020", "slot_events": 1}, id="apdu-text"),
        pytest.param({"apdu": read_binary(1)}, id="events-missing"),
        pytest.param({"apdu": read_binary(1), "slot_events": "1"}, id="events-text"),
        pytest.param({"apdu": read_binary(1), "slot_events": 1, "le": 32}, id="unknown-arg"),
    ],
)
def test_malformed_card_transmit_is_the_daemons_bad_request(
    client: DaemonClient, inserted: Path, args: dict
) -> None:
    with pytest.raises(BadRequest):
        client._call("card_transmit", args)
    assert client.card_status().present  # the daemon and the connection are fine


@pytest.mark.parametrize(
    "args",
    [
        pytest.param({"apdu": b"\x00\xb0\x81", "slot_events": 1}, id="apdu-3-bytes"),
        pytest.param({"apdu": bytes(262), "slot_events": 1}, id="apdu-262-bytes"),
        pytest.param({"apdu": read_binary(1), "slot_events": -1}, id="events-negative"),
    ],
)
def test_out_of_range_card_transmit_is_the_dongles_invalid_parameter(
    client: DaemonClient, inserted: Path, args: dict
) -> None:
    with pytest.raises(DongleError) as caught:
        client._call("card_transmit", args)
    assert caught.value.status == Status.INVALID_PARAMETER
    assert client.card_status().present


def test_card_transmit_needs_the_lease_and_card_status_does_not(
    daemon: DaemonProcess, inserted: Path
) -> None:
    with daemon.client("holder") as holder, daemon.client("other") as other:
        with holder.acquire():
            assert other.card_status().present  # harmless, like ping and info
            with pytest.raises(DongleBusy) as caught:
                other.card_transmit(read_binary(1), 1)
            assert "holder" in str(caught.value)
            assert holder.card_transmit(read_binary(1), 1).endswith(b"\x90\x00")
        assert other.card_transmit(read_binary(1), 1).endswith(b"\x90\x00")
