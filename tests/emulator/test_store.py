"""The dongle's persistent store: two slots, integrity, encryption at rest, atomic creation."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from emulator.firmware.factory import manufacture_batch
from emulator.firmware.store import (
    FILE_SIZE,
    SLOT_SIZE,
    DongleStore,
    PowerCut,
    StoreCorrupt,
    StoreExists,
)
from emulator.usb.bus import VirtualBus
from tests.fixtures.dongles import Provisioned


@pytest.fixture
def store(tmp_path: Path) -> DongleStore:
    (serial,) = manufacture_batch(tmp_path, 1, seed=3)
    return DongleStore(tmp_path, serial)


def _flip(path: Path, offset: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))


def _slot_holding(store: DongleStore, counter: int) -> int:
    """Which slot a fresh load of ``store`` took its state from (checked by its counter)."""
    fresh = DongleStore(store.directory, store.serial)
    assert fresh.load().counter == counter
    assert fresh._active is not None
    return fresh._active.index


def test_state_round_trips(store: DongleStore) -> None:
    state = dataclasses.replace(store.load(), counter=41, key_rev=2)
    store.save(state)
    assert DongleStore(store.directory, store.serial).load() == state


def test_saves_alternate_slots_and_never_resize_the_file(store: DongleStore) -> None:
    base = store.load()
    slots = []
    for counter in (1, 2, 3):
        store.save(dataclasses.replace(base, counter=counter))
        slots.append(_slot_holding(store, counter))
        assert store.path.stat().st_size == FILE_SIZE
    assert slots == [1, 0, 1]


def test_flipped_byte_in_the_only_slot_is_detected(store: DongleStore) -> None:
    _flip(store.path, 200)  # inside slot A's ciphertext; slot B was never written
    with pytest.raises(StoreCorrupt, match="integrity"):
        store.load()


def test_torn_write_of_the_newer_slot_falls_back_to_the_older(store: DongleStore) -> None:
    base = store.load()
    store.save(dataclasses.replace(base, counter=7))
    store.save(dataclasses.replace(base, counter=8))
    newer = _slot_holding(store, 8)
    blob = bytearray(store.path.read_bytes())
    start = newer * SLOT_SIZE
    blob[start + 100 : start + SLOT_SIZE] = bytes(SLOT_SIZE - 100)  # the write stopped at byte 100
    store.path.write_bytes(bytes(blob))
    assert _slot_holding(store, 7) == 1 - newer


def test_interrupted_write_leaves_the_old_state_and_the_next_write_wins(
    store: DongleStore,
) -> None:
    old = dataclasses.replace(store.load(), counter=3)
    store.save(old)
    store.cut_after = 80
    with pytest.raises(PowerCut):
        store.save(dataclasses.replace(old, counter=99))
    assert DongleStore(store.directory, store.serial).load() == old
    store.save(dataclasses.replace(old, counter=5))
    assert DongleStore(store.directory, store.serial).load().counter == 5


def test_a_slot_with_a_forged_generation_is_refused(store: DongleStore) -> None:
    base = store.load()
    store.save(dataclasses.replace(base, counter=1))
    store.save(dataclasses.replace(base, counter=2))
    older = 1 - _slot_holding(store, 2)
    # The generation sits just before the sealed length and nonce; raising it by hand must not
    # promote the older slot (the tag covers the header).
    generation_end = older * SLOT_SIZE + len(store._prefix) + 8
    _flip(store.path, generation_end - 8)
    assert _slot_holding(store, 2) == 1 - older


def test_truncated_file_is_detected(store: DongleStore) -> None:
    store.path.write_bytes(store.path.read_bytes()[:-1])
    with pytest.raises(StoreCorrupt, match="format"):
        store.load()


def test_file_of_another_dongle_is_refused(tmp_path: Path) -> None:
    first, second = manufacture_batch(tmp_path, 2, seed=4)
    (tmp_path / f"{first}.dongle").write_bytes((tmp_path / f"{second}.dongle").read_bytes())
    with pytest.raises(StoreCorrupt):
        DongleStore(tmp_path, first).load()


def test_creation_refuses_an_existing_dongle(store: DongleStore) -> None:
    with pytest.raises(StoreExists):
        DongleStore(store.directory, store.serial).create(store.load())
    assert store.load().serial == store.serial  # the fuse was not replaced


def test_creation_killed_before_its_commit_leaves_no_dongle(tmp_path: Path) -> None:
    (serial,) = manufacture_batch(tmp_path / "model", 1, seed=5)
    state = DongleStore(tmp_path / "model", serial).load()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies in the middle of the creation
        os.link = lambda *args: os._exit(9)  # type: ignore[assignment]
        DongleStore(tmp_path, serial).create(state)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    assert not (tmp_path / f"{serial}.dongle").exists()
    DongleStore(tmp_path, serial).create(state)  # a rerun creates it, over the spare fuse
    assert DongleStore(tmp_path, serial).load() == state


def test_private_keys_are_not_stored_in_clear(bus: VirtualBus, provisioned: Provisioned) -> None:
    dongle = bus.get(provisioned.serial)
    state = dongle.store.load()
    blob = dongle.store.path.read_bytes()
    assert state.payment_key is not None
    assert state.payment_key not in blob and state.attestation_key not in blob
    assert stat.S_IMODE(dongle.store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(dongle.store.fuse_path.stat().st_mode) == 0o600
