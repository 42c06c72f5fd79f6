"""Hotplug through the daemon: unplug and replug, also in the middle of each step of a signing,
and clients that hang up in the middle of a command."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from dongle import pin_client
from dongle.client import DaemonClient
from dongle.errors import DongleRemoved, NoDongle
from dongle.wire import MessageStream
from protocol.pin import HostPinSession
from tests.daemon.conftest import (
    EventLog,
    ProvisionedDongle,
    provision_via_daemon,
    start_daemon,
)
from tests.fixtures.dongle_keys import attested_key
from tests.fixtures.dongles import TEST_PIN, CableProcess, payment_fields, running_cable


def test_unplug_and_replug_are_announced_and_the_dongle_is_usable_again(
    cable: CableProcess, client: DaemonClient, events: EventLog
) -> None:
    serial = cable.serials[0]
    with cable.control() as control:
        control.unplug(serial)
        events.wait("removed", serial)
        with pytest.raises(NoDongle, match="insert the payment dongle"):
            client.ping(b"x")
        assert client.devices() == []
        control.plug(serial)
        events.wait("inserted", serial, state="factory")
    assert client.ping(b"back") == b"back"


def test_lease_ends_when_the_dongle_is_unplugged(
    cable: CableProcess, client: DaemonClient, events: EventLog
) -> None:
    serial = client.acquire().serial
    with cable.control() as control:
        control.unplug(serial)
        events.wait("lease_changed", serial, holder=None)
        control.plug(serial)
    events.wait("inserted", serial)
    assert client.devices()[0].held_by is None


STEPS = ("key_agreement", "pin_token", "sign_payment")


@pytest.mark.parametrize("direction", ["out", "in"])
@pytest.mark.parametrize("step", STEPS)
def test_unplug_during_each_step_of_a_signing(
    cable: CableProcess,
    client: DaemonClient,
    provisioned: ProvisionedDongle,
    events: EventLog,
    step: str,
    direction: str,
) -> None:
    """``out``: the request is cut off on its way; ``in``: the dongle ran it, its answer is lost.
    Either way the caller gets DongleRemoved, and after replugging the same payment signs once."""
    serial = provisioned.serial
    fields = payment_fields()
    arm: Callable[[str], None]

    def arm(current: str) -> None:
        if current == step:
            with cable.control() as control:
                control.fault(serial, "unplug", direction=direction)

    with pytest.raises(DongleRemoved, match="plug it back in"):
        arm("key_agreement")
        session = HostPinSession.start(client.key_agreement(bytes(16)).key)
        arm("pin_token")
        encrypted = client.pin_token(session.public_key, session.pin_hash_enc(TEST_PIN))
        token = session.pin_token(encrypted)
        arm("sign_payment")
        client.sign_payment(fields, pin_client.payment_pin_auth(token, fields))
    events.wait("removed", serial)
    with cable.control() as control:
        control.plug(serial)
    events.wait("inserted", serial, state="locked")

    token = pin_client.obtain_pin_token(client, TEST_PIN, attested_key(client))
    signed = client.sign_payment(fields, pin_client.payment_pin_auth(token, fields))
    assert signed.counter == 1  # signed exactly once, whatever was lost
    assert signed.replayed == (step == "sign_payment" and direction == "in")


def test_client_hanging_up_mid_command_cancels_it_and_frees_the_dongle(
    workdir: Path,
) -> None:
    with running_cable(1, timing="hardware") as cable:
        daemon = start_daemon(workdir, cable)
        try:
            with daemon.client("staff") as staff:
                events = EventLog(staff)
                serial = staff.devices()[0].serial
                raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                raw.connect(daemon.socket_path)
                stream = MessageStream(raw)
                stream.write({"v": 1, "id": 1, "op": "hello", "args": {"client": "quitter"}})
                stream.write({"v": 1, "id": 2, "op": "acquire"})
                stream.write({"v": 1, "id": 3, "op": "generate_key"})  # 80 ms on the dongle
                assert stream.read()["id"] == 1
                assert stream.read()["id"] == 2
                raw.close()  # gone while the key is being generated
                events.wait("lease_changed", serial, holder=None)
                assert staff.acquire().holder.client == "staff"
                assert len(staff.key_agreement(bytes(16)).key) == 65
                events.close()
            log = daemon.log()
            assert "event=client_hung_up" in log
            assert "event=command_abandoned" in log and "op=generate_key" in log
        finally:
            daemon.stop()


def test_daemon_finds_a_dongle_plugged_in_while_it_was_down(
    workdir: Path, cable: CableProcess
) -> None:
    serial = cable.serials[0]
    with cable.control() as control:
        control.unplug(serial)
        daemon = start_daemon(workdir, cable)
        try:
            with daemon.client() as client:
                assert client.devices() == []
                events = EventLog(client)
                control.plug(serial)
                events.wait("inserted", serial)
                events.close()
                provision_via_daemon(client)
                assert client.info().state == "locked"
        finally:
            daemon.stop()
