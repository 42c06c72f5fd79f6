"""Power loss: a process running the dongle's firmware is SIGKILLed at random points while it signs
payments (each signature is a store write). After each kill the store must open, and its counter
must be at least the last counter the dongle handed out, and never lower than before."""

from __future__ import annotations

import os
import random
import select
import signal
import struct
import time
from pathlib import Path

import pytest

from emulator.firmware.dongle import Firmware
from emulator.firmware.store import DongleStore
from emulator.usb.backend import local_backend
from emulator.usb.bus import VirtualBus
from protocol.messages import Command, Request, Status
from protocol.pin import HostPinSession, pin_auth, sign_request_message
from tests.fixtures.dongles import TEST_PIN, open_link, payment_fields, provision

_COUNTER = struct.Struct(">I")


def _sign_forever(store: DongleStore, report: int) -> None:
    """The child: power up, get a PIN token, sign payments until killed, reporting each counter
    once its signature exists (i.e. after the dongle would have sent it)."""
    firmware = Firmware(store, time.monotonic)
    key = firmware.handle(Request(Command.GET_KEY_AGREEMENT, 1)).body["key"]
    session = HostPinSession.start(key)
    params = {"key_agreement": session.public_key, "pin_hash_enc": session.pin_hash_enc(TEST_PIN)}
    answer = firmware.handle(Request(Command.GET_PIN_TOKEN, 2, params))
    token = session.pin_token(answer.body["pin_token_enc"])
    request_id = 3
    while True:
        fields = payment_fields()
        auth = pin_auth(token, sign_request_message(fields))
        response = firmware.handle(
            Request(Command.SIGN_PAYMENT, request_id, {"fields": fields, "pin_auth": auth})
        )
        assert response.status == Status.OK
        os.write(report, _COUNTER.pack(response.body["counter"]))
        request_id += 1


def _run_once(store: DongleStore, rng: random.Random) -> int:
    """Fork a signing dongle, kill it at a random moment; the last counter it handed out."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_end)
        try:
            _sign_forever(store, write_end)
        finally:
            os._exit(1)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        assert ready, "the signing child did not start"
        deadline = time.monotonic() + rng.uniform(0, 0.004)
        while time.monotonic() < deadline:
            pass  # a random instant, spinning: sleep() is too coarse to land inside writes
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        reports = b""
        while chunk := os.read(read_end, 65536):
            reports += chunk
    finally:
        os.close(read_end)
    whole = len(reports) - len(reports) % _COUNTER.size
    return _COUNTER.unpack_from(reports, whole - _COUNTER.size)[0] if whole else 0


def _provisioned_store(directory: Path) -> DongleStore:
    bus = VirtualBus(directory)
    (serial,) = bus.manufacture(1, seed=11)
    with open_link(local_backend(bus)) as link:
        provision(link)
    bus.unplug(serial)
    return DongleStore(directory, serial)


def _kill_repeatedly(directory: Path, runs: int) -> None:
    store = _provisioned_store(directory)
    rng = random.Random(2024)
    previous = 0
    for _ in range(runs):
        handed_out = _run_once(store, rng)
        state = DongleStore(directory, store.serial).load()  # raises StoreCorrupt if torn
        assert state.counter >= handed_out, "a signature left before its counter was stored"
        assert state.counter >= previous, "the counter went backwards"
        assert state.lifecycle == "locked"
        previous = state.counter
    assert previous > runs  # the runs did sign, so the kills did land among writes


def test_store_survives_200_kills_during_writes(tmp_path: Path) -> None:
    _kill_repeatedly(tmp_path, 200)


@pytest.mark.slow
def test_store_survives_3000_kills_during_writes(tmp_path: Path) -> None:
    _kill_repeatedly(tmp_path, 3000)
