"""Power cuts on the PIN and PUK paths cannot buy guesses (docs/protocol.md §6.4).

A thief who holds the dongle can cut its power at any moment and watch it draw current for a write.
An attempt may have told him that a guess is wrong when the dongle compared the guess with the
secret at all (its timing or current may show the result even if no answer leaves), or when what he
sees (an answer, or a write started and how long it is) differs from what the right secret would
cause from the same stored state. The tests run the real firmware on the real store, cut the power
at every byte offset of every store write a command makes, power the dongle up again (a new
``Firmware`` on the same store) and check that each attempt pays for what it may have taught::

    tries after + (1 if the attempt may have told a wrong guess apart) <= tries before

so a thief learns at most PIN_RETRIES (PUK_RETRIES) wrong guesses before the dongle blocks
(wipes), and that a cut costs the owner at most the one try in flight::

    tries after >= tries before - 1

The store writes only the sealed slot (header, nonce, record, tag; about 1.2 KiB here), never the
zero padding of its 32 KiB slot, so cutting at every byte of each write covers the whole region a
write touches. The right guess's writes, for comparison, come from one uncut run on a copy of the
same stored state: a cut inside write k cannot change what happened before write k.
"""

from __future__ import annotations

import hmac
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.firmware import dongle as firmware_module
from emulator.firmware.dongle import Firmware
from emulator.firmware.state import DongleState
from emulator.firmware.store import DongleStore, PowerCut
from emulator.usb.backend import local_backend
from emulator.usb.bus import VirtualBus
from protocol.messages import Command, Request, Status
from protocol.pin import PIN_RETRIES, PUK_RETRIES, HostPinSession
from tests.fixtures.dongles import TEST_PIN, TEST_PUK, open_link, provision

WRONG_PIN = "975318"
WRONG_PUK = "97531864"
NEW_PIN = "802468"

Observation = tuple[str, int]  # ("cut", write index) or ("answer", status)
Verb = Callable[[Firmware, str], Status]


class AimedStore(DongleStore):
    """The real store; the power goes ``offset`` bytes into write number ``write`` (from 0) of
    this power-up, and the length of each write is recorded."""

    def __init__(self, directory: Path, serial: str, aim: tuple[int, int] | None) -> None:
        super().__init__(directory, serial)
        self.aim = aim
        self.lengths: list[int] = []

    def _seal(self, state: DongleState, generation: int) -> bytes:
        slot = super()._seal(state, generation)
        if self.aim is not None and self.aim[0] == len(self.lengths):
            self.cut_after = self.aim[1]
        self.lengths.append(len(slot))
        return slot


class ComparisonSpy:
    """Stands for the ``hmac`` module inside the firmware and counts its secret comparisons; the
    comparison itself is the real ``hmac.compare_digest``."""

    def __init__(self) -> None:
        self.count = 0

    def compare_digest(self, a: bytes, b: bytes) -> bool:
        self.count += 1
        return hmac.compare_digest(a, b)


def _command(firmware: Firmware, command: Command, params: dict[str, object]) -> Status:
    return firmware.handle(Request(command, 2, params)).status


def _session(firmware: Firmware) -> HostPinSession:
    return HostPinSession.start(firmware.handle(Request(Command.GET_KEY_AGREEMENT, 1)).body["key"])


def get_pin_token(firmware: Firmware, pin: str) -> Status:
    session = _session(firmware)
    params = {"key_agreement": session.public_key, "pin_hash_enc": session.pin_hash_enc(pin)}
    return _command(firmware, Command.GET_PIN_TOKEN, params)


def change_pin(firmware: Firmware, pin: str) -> Status:
    session = _session(firmware)
    params = {
        "key_agreement": session.public_key,
        "pin_hash_enc": session.pin_hash_enc(pin),
        "new_pin_enc": session.new_pin_enc(NEW_PIN),
    }
    return _command(firmware, Command.CHANGE_PIN, params)


def unblock_pin(firmware: Firmware, puk: str) -> Status:
    session = _session(firmware)
    params = {
        "key_agreement": session.public_key,
        "puk_enc": session.puk_enc(puk),
        "new_pin_enc": session.new_pin_enc(NEW_PIN),
    }
    return _command(firmware, Command.UNBLOCK_PIN, params)


def pin_tries(state: DongleState) -> int:
    return state.pin_retries


def puk_tries(state: DongleState) -> int:
    # A wiped dongle, or one whose wipe a cut interrupted (no PUK tries left), has none.
    return state.puk_retries if state.puk_hash is not None else 0


@dataclass
class Dongle:
    directory: Path
    serial: str
    twin_directory: Path
    comparisons: ComparisonSpy

    def __post_init__(self) -> None:
        self.file = self.directory / f"{self.serial}.dongle"
        self._reader = DongleStore(self.directory, self.serial)

    def stored(self) -> DongleState:
        return self._reader.load()

    def run(self, verb: Verb, secret: str, aim: tuple[int, int] | None) -> tuple[Observation, int]:
        """Power up, run ``verb`` with the power aimed to go at ``aim``; what a thief sees, and
        the number of writes started."""
        store = AimedStore(self.directory, self.serial, aim)
        self.comparisons.count = 0
        try:
            observed: Observation = ("answer", verb(Firmware(store, time.monotonic), secret))
        except PowerCut:
            observed = ("cut", len(store.lengths) - 1)
        return observed, len(store.lengths)

    def twin(self, verb: Verb, secret: str) -> tuple[list[int], Status]:
        """The writes and answer of ``verb`` with ``secret`` on a copy of the stored state."""
        shutil.copyfile(self.file, self.twin_directory / self.file.name)
        store = AimedStore(self.twin_directory, self.serial, None)
        status = verb(Firmware(store, time.monotonic), secret)
        return store.lengths, status


@pytest.fixture
def dongle(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dongle]:
    spy = ComparisonSpy()
    monkeypatch.setattr(firmware_module, "hmac", spy)
    # In memory where the system has it: the test is about the order of the writes, and a disk's
    # fdatasync per completed write would make it ten times slower.
    memory = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=memory if memory.is_dir() else None) as tmp:
        directory, twin = Path(tmp) / "dongle", Path(tmp) / "twin"
        bus = VirtualBus(directory)
        (serial,) = bus.manufacture(1, seed=5)
        with open_link(local_backend(bus)) as link:
            provision(link)
        bus.unplug(serial)
        twin.mkdir()
        shutil.copyfile(directory / f"{serial}.fuse", twin / f"{serial}.fuse")
        yield Dongle(directory, serial, twin, spy)


def cut_everywhere(
    dongle: Dongle, verb: Verb, secret: str, right: str, tries: Callable[[DongleState], int]
) -> Status:
    """From the stored state, cut the power at every byte of every write ``verb`` makes with
    ``secret`` (each cut starting again from that state) and check what each attempt taught and
    cost; then let it run whole and return its answer, leaving the state it makes."""
    image = dongle.file.read_bytes()
    before = tries(dongle.stored())
    right_lengths, right_status = dongle.twin(verb, right)
    write = 0
    while True:
        offset = 0
        while True:
            dongle.file.write_bytes(image)
            observed, writes = dongle.run(verb, secret, (write, offset))
            after = tries(dongle.stored())
            where = f"power cut at byte {offset} of write {write}, {before} tries before"
            assert after >= before - 1, f"{where}: the owner lost more than the try in flight"
            if secret != right:
                cut_in_right = write < len(right_lengths) and offset < right_lengths[write]
                right_seen = ("cut", write) if cut_in_right else ("answer", right_status)
                compared = dongle.comparisons.count > 0
                taught = compared or observed != right_seen
                assert after + taught <= before, f"{where}: a wrong guess was told without a try"
            if observed[0] == "answer":
                assert dongle.comparisons.count == 1, "the guess was answered without a comparison"
                break
            offset += 1
        if writes <= write + 1:
            return Status(observed[1])
        write += 1


def test_power_cuts_buy_no_pin_guesses_and_cost_the_owner_at_most_one_try(dongle: Dongle) -> None:
    thief = [
        cut_everywhere(dongle, get_pin_token, WRONG_PIN, TEST_PIN, pin_tries),
        cut_everywhere(dongle, change_pin, WRONG_PIN, TEST_PIN, pin_tries),
    ]
    assert thief == [Status.PIN_INVALID] * 2
    # The owner's right PIN on the last try: the spend blocks the PIN until the restore is stored.
    assert cut_everywhere(dongle, get_pin_token, TEST_PIN, TEST_PIN, pin_tries) == Status.OK
    assert dongle.stored().pin_retries == PIN_RETRIES
    while pin_tries(dongle.stored()) > 0:
        thief.append(cut_everywhere(dongle, get_pin_token, WRONG_PIN, TEST_PIN, pin_tries))
    assert thief[2:] == [Status.PIN_INVALID] * (PIN_RETRIES - 1) + [Status.PIN_BLOCKED]
    assert dongle.run(get_pin_token, TEST_PIN, None)[0] == ("answer", Status.PIN_BLOCKED)


def test_power_cuts_buy_no_puk_guesses_and_cost_the_owner_at_most_one_try(dongle: Dongle) -> None:
    for _ in range(PUK_RETRIES - 1):
        assert dongle.run(unblock_pin, WRONG_PUK, None)[0] == ("answer", Status.PUK_INVALID)
    # The owner's right PUK on the last try: the spend starts the wipe until the restore is stored.
    assert cut_everywhere(dongle, unblock_pin, TEST_PUK, TEST_PUK, puk_tries) == Status.OK
    assert dongle.run(get_pin_token, NEW_PIN, None)[0] == ("answer", Status.OK)
    answers = []
    while puk_tries(dongle.stored()) > 0:
        answers.append(cut_everywhere(dongle, unblock_pin, WRONG_PUK, TEST_PUK, puk_tries))
    assert answers == [Status.PUK_INVALID] * (PUK_RETRIES - 1) + [Status.WIPED]
    assert dongle.stored().payment_key is None
