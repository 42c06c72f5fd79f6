"""The dongle's persistent store: integrity, encryption at rest, atomic replacement."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from emulator.firmware.factory import manufacture_batch
from emulator.firmware.store import DongleStore, PowerCut, StoreCorrupt
from emulator.usb.bus import VirtualBus
from tests.fixtures.dongles import Provisioned


@pytest.fixture
def store(tmp_path: Path) -> DongleStore:
    (serial,) = manufacture_batch(tmp_path, 1, seed=3)
    return DongleStore(tmp_path, serial)


def test_state_round_trips(store: DongleStore) -> None:
    state = dataclasses.replace(store.load(), counter=41, key_rev=2)
    store.save(state)
    assert store.load() == state


def test_flipped_byte_is_detected(store: DongleStore) -> None:
    blob = bytearray(store.path.read_bytes())
    blob[-20] ^= 0x01
    store.path.write_bytes(bytes(blob))
    with pytest.raises(StoreCorrupt, match="integrity"):
        store.load()


def test_truncated_file_is_detected(store: DongleStore) -> None:
    store.path.write_bytes(store.path.read_bytes()[:-1])
    with pytest.raises(StoreCorrupt):
        store.load()


def test_file_of_another_dongle_is_refused(tmp_path: Path) -> None:
    first, second = manufacture_batch(tmp_path, 2, seed=4)
    (tmp_path / f"{first}.dongle").write_bytes((tmp_path / f"{second}.dongle").read_bytes())
    with pytest.raises(StoreCorrupt):
        DongleStore(tmp_path, first).load()


def test_private_keys_are_not_stored_in_clear(bus: VirtualBus, provisioned: Provisioned) -> None:
    dongle = bus.get(provisioned.serial)
    state = dongle.store.load()
    blob = dongle.store.path.read_bytes()
    assert state.payment_key is not None
    assert state.payment_key not in blob and state.attestation_key not in blob
    assert stat.S_IMODE(dongle.store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(dongle.store.fuse_path.stat().st_mode) == 0o600


def test_interrupted_write_leaves_the_old_state(store: DongleStore) -> None:
    old = store.load()
    store.cut_after = 30
    with pytest.raises(PowerCut):
        store.save(dataclasses.replace(old, counter=99))
    assert store.load() == old
    store.save(dataclasses.replace(old, counter=5))  # the stale temporary file is overwritten
    assert store.load().counter == 5
