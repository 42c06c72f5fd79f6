"""Injected faults and how the host link copes: retransmission, stale answers, keepalive, cancel."""

from __future__ import annotations

import threading
import time

import pytest

from dongle.usblink import DongleLink, DongleRemoved, LinkCorrupted, LinkTimeout
from emulator.usb.bus import VirtualBus
from emulator.usb.faults import Fault, FaultError, FaultKind
from protocol.errors import DongleCancelled
from protocol.messages import Command, KeepaliveStatus
from protocol.pin import pin_auth, sign_request_message
from tests.emulator.conftest import FakeClock
from tests.fixtures.dongles import (
    Provisioned,
    in_process_bus,
    open_link,
    payment_fields,
    pin_token,
)


def _arm(bus: VirtualBus, link: DongleLink, kind: FaultKind, direction: str = "in", **kw) -> None:  # type: ignore[no-untyped-def]
    bus.get(link.serial).add_fault(Fault(kind, direction, **kw))


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize("kind", [FaultKind.DROP, FaultKind.CORRUPT])
def test_idempotent_command_survives_a_lost_transfer(
    link: DongleLink, bus: VirtualBus, kind: FaultKind, direction: str
) -> None:
    _arm(bus, link, kind, direction)
    assert link.call(Command.PING, {"data": b"x"}, timeout=0.2)["data"] == b"x"


def test_lost_payment_answer_is_retransmitted_without_a_second_signature(
    link: DongleLink, bus: VirtualBus, provisioned: Provisioned
) -> None:
    token = pin_token(link)
    _arm(bus, link, FaultKind.DROP, "in")
    fields = payment_fields()
    auth = pin_auth(token, sign_request_message(fields))
    # The answer is dropped once; the link resends and gets the remembered answer.
    result = link.call(Command.SIGN_PAYMENT, {"fields": fields, "pin_auth": auth}, timeout=0.2)
    assert result["counter"] == 1
    assert link.call(Command.GET_INFO)["counter"] == 1


def test_non_idempotent_command_with_a_lost_answer_is_reported(
    link: DongleLink, bus: VirtualBus
) -> None:
    _arm(bus, link, FaultKind.DROP, "in")
    with pytest.raises(LinkTimeout, match="may or may not have run"):
        link.call(Command.GENERATE_KEY, timeout=0.2)
    assert link.call(Command.GET_INFO)["key_rev"] == 1  # it had run


def test_duplicated_answers_are_discarded(link: DongleLink, bus: VirtualBus) -> None:
    _arm(bus, link, FaultKind.DUPLICATE, "in")
    assert link.call(Command.PING, {"data": b"1"})["data"] == b"1"
    assert link.call(Command.PING, {"data": b"2"})["data"] == b"2"


def test_duplicated_request_runs_once(link: DongleLink, bus: VirtualBus) -> None:
    _arm(bus, link, FaultKind.DUPLICATE, "out")
    assert link.call(Command.GENERATE_KEY)["key_rev"] == 1
    assert link.call(Command.GET_INFO)["key_rev"] == 1


def test_persistent_corruption_ends_in_link_corrupted(link: DongleLink, bus: VirtualBus) -> None:
    _arm(bus, link, FaultKind.CORRUPT, "in", count=0)
    with pytest.raises(LinkCorrupted):
        link.call(Command.PING, timeout=0.2)


def test_delayed_answer_past_the_timeout_times_out(link: DongleLink, bus: VirtualBus) -> None:
    _arm(bus, link, FaultKind.DELAY, "in", seconds=0.3, count=0)
    with pytest.raises(LinkTimeout):
        link.call(Command.GET_INFO, timeout=0.05)


def test_unplug_in_the_middle_of_a_transfer(link: DongleLink, bus: VirtualBus) -> None:
    _arm(bus, link, FaultKind.UNPLUG, "in")
    with pytest.raises(DongleRemoved):
        link.call(Command.PING)
    assert not bus.get(link.serial).plugged


def test_stalled_in_endpoint_is_cleared_and_the_answer_kept(
    link: DongleLink, bus: VirtualBus
) -> None:
    _arm(bus, link, FaultKind.STALL, "in")
    assert link.call(Command.PING, {"data": b"s"}, timeout=0.2)["data"] == b"s"


def test_power_cut_during_a_store_write_keeps_the_old_state(
    link: DongleLink, bus: VirtualBus, bus_and_backend
) -> None:  # type: ignore[no-untyped-def]
    _arm(bus, link, FaultKind.POWER_CUT, at_byte=40)
    with pytest.raises(DongleRemoved):
        link.call(Command.GENERATE_KEY)
    bus.plug(link.serial)
    with open_link(bus_and_backend[1]) as again:
        info = again.call(Command.GET_INFO)
    assert (info["state"], info["key_rev"]) == ("factory", 0)


def test_faults_are_reproducible_with_a_seed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outcomes = []
    for run in range(2):
        bus, backend = in_process_bus(tmp_path / str(run), 1, seed=42)
        with open_link(backend) as link:
            _arm(bus, link, FaultKind.CORRUPT, "in", probability=0.5, count=0)
            for _ in range(10):
                link.call(Command.GET_INFO, timeout=0.2)
            outcomes.append((link.serial, bus.get(link.serial).faults.rng.getstate()))
    assert outcomes[0] == outcomes[1]


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(FaultError, match="unknown fault kind"):
        Fault.parse("melt", {})


def test_hardware_timing_sends_keepalives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, backend = in_process_bus(tmp_path, 1, timing="hardware")
    seen: list[KeepaliveStatus] = []
    with open_link(backend) as link:
        link.call(Command.GENERATE_KEY, on_keepalive=seen.append)
    assert seen and seen[0] is KeepaliveStatus.PROCESSING


def test_cancel_before_the_dongle_commits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, backend = in_process_bus(tmp_path, 1, timing="hardware")
    cancel = threading.Event()
    with open_link(backend) as link:
        with pytest.raises(DongleCancelled):
            link.call(Command.GENERATE_KEY, on_keepalive=lambda _: cancel.set(), cancel=cancel)
        assert link.call(Command.GET_INFO)["key_rev"] == 0


def test_signature_once_counted_is_delivered_despite_cancel(
    link: DongleLink, provisioned: Provisioned
) -> None:
    token = pin_token(link)
    fields = payment_fields()
    cancel = threading.Event()
    cancel.set()
    auth = pin_auth(token, sign_request_message(fields))
    result = link.call(Command.SIGN_PAYMENT, {"fields": fields, "pin_auth": auth}, cancel=cancel)
    assert result["counter"] == 1


def test_delayed_request_reaches_the_dongle_only_when_its_time_is_up(
    link: DongleLink, bus: VirtualBus, clock: FakeClock
) -> None:
    _arm(bus, link, FaultKind.DELAY, "out", seconds=5.0)
    with pytest.raises(LinkTimeout):  # GENERATE_KEY is not retransmitted
        link.call(Command.GENERATE_KEY, timeout=0.05)
    firmware = bus.get(link.serial).firmware
    assert firmware is not None and firmware.state.key_rev == 0  # not received yet
    clock.advance(5.0)
    assert link.call(Command.GET_INFO)["key_rev"] == 1  # received, run, then GET_INFO behind it


def test_delayed_request_in_real_time_is_answered_after_the_delay(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bus, backend = in_process_bus(tmp_path, 1)
    with open_link(backend) as link:
        _arm(bus, link, FaultKind.DELAY, "out", seconds=0.3)
        started = time.monotonic()
        assert link.call(Command.PING, {"data": b"late"}, timeout=2.0)["data"] == b"late"
        assert time.monotonic() - started >= 0.3
