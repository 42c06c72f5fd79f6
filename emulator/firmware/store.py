"""The virtual dongle's non-volatile memory: one preallocated file per dongle with two slots (A/B),
as firmware keeps its state in flash.

File layout (format 2): two slots of ``SLOT_SIZE`` bytes each, the file never changes size::

    slot = magic "TVPAYDGL" | format version (2) | serial length (1) | serial
           | generation (8, big-endian) | sealed length (4) | nonce (12) | AES-256-GCM(state)
           | zero padding to SLOT_SIZE

Each slot seals the whole state record (CBOR, the signature counter included) with AES-256-GCM
under a per-dongle device key; everything before the nonce is the associated data, so the tag is
also the slot's checksum and binds the generation number and the serial to the state. The device
key is HKDF-SHA-256 of a 32-byte "fused" secret kept in a separate file (``<serial>.fuse``, 0600,
written once at manufacture). On hardware that secret is burnt into the secure element and never
readable; here anyone who can read both files can read the keys. It keeps keys out of plain sight
in state files and backups, nothing more.

A save writes the inactive slot in place with generation + 1 and calls ``fdatasync`` once (the file
size never changes, so no metadata has to reach the disk). A load takes the valid slot with the
highest generation. Killed at any instruction, the newer slot is either complete (new state) or
fails its tag and the other slot still holds the previous state: old or new, never a mix, and the
counter, being part of the state, never goes back. The first state is written to a temporary
file, fsynced and linked into place (``link`` never replaces an existing dongle), after its fuse.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from emulator.firmware.state import DongleState, StateRecordError

MAGIC = b"TVPAYDGL"
FORMAT_VERSION = 2
SLOT_SIZE = 32 * 1024  # a full signing cache and the largest certificates take about 20 KiB
SLOTS = 2
FILE_SIZE = SLOT_SIZE * SLOTS
STATE_SUFFIX = ".dongle"
FUSE_SUFFIX = ".fuse"
_NONCE = 12
_SLOT_META = struct.Struct(">QI")  # generation, sealed length


class StoreError(Exception):
    """The dongle's state could not be read or written."""


class StoreCorrupt(StoreError):
    """The state file is damaged or was not written by this dongle."""


class StoreExists(StoreError):
    """A dongle with this serial already has a state file."""


class PowerCut(BaseException):  # not an Exception: firmware code must not catch it and carry on
    """The power went while the store was writing (fault injection): the dongle is gone."""


@dataclass(frozen=True, slots=True)
class _Slot:
    index: int
    generation: int
    state: DongleState


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        count = os.pwrite(fd, view, offset)
        view, offset = view[count:], offset + count


class DongleStore:
    """The state file of one dongle in ``directory``."""

    def __init__(self, directory: Path, serial: str) -> None:
        self.directory = Path(directory)
        self.serial = serial
        self.path = self.directory / f"{serial}{STATE_SUFFIX}"
        self.fuse_path = self.directory / f"{serial}{FUSE_SUFFIX}"
        self._prefix = MAGIC + bytes([FORMAT_VERSION, len(serial.encode())]) + serial.encode()
        self._aead: AESGCM | None = None
        self._active: _Slot | None = None  # the newest valid slot, as last loaded or saved
        # Fault injection: after this many bytes of the next write, ``interrupt`` is called; it
        # raises PowerCut (in-process) or ends the process (virtual cable).
        self.cut_after: int | None = None
        self.interrupt: Callable[[], None] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    # -- creation ------------------------------------------------------------------------------

    def create(self, state: DongleState) -> None:
        """Burn the fuse and write the first state; refuses to overwrite an existing dongle.

        The state file appears whole or not at all: a creation killed half-way leaves no dongle
        (at most a spare fuse, which the next creation of that serial replaces)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raise StoreExists(f"dongle {self.serial} already exists in {self.directory}")
        fuse_tmp = self._durable_temp(FUSE_SUFFIX, os.urandom(32))
        os.replace(fuse_tmp, self.fuse_path)  # no state file: no state depends on an old fuse
        _fsync_dir(self.directory)  # the fuse is durable before any state sealed with it
        self._aead = None
        image = bytearray(FILE_SIZE)
        image[:SLOT_SIZE] = self._seal(state, 1).ljust(SLOT_SIZE, b"\0")
        state_tmp = self._durable_temp(STATE_SUFFIX, bytes(image))
        try:
            os.link(state_tmp, self.path)  # unlike rename, never replaces an existing file
        except FileExistsError:
            raise StoreExists(f"dongle {self.serial} already exists in {self.directory}") from None
        finally:
            os.unlink(state_tmp)
        _fsync_dir(self.directory)
        self._active = _Slot(0, 1, state)

    def _durable_temp(self, suffix: str, data: bytes) -> Path:
        tmp = self.directory / f".{self.serial}{suffix}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    # -- sealing -------------------------------------------------------------------------------

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            try:
                fuse = self.fuse_path.read_bytes()
            except OSError as exc:
                raise StoreError(
                    f"cannot read the fused secret {self.fuse_path}: {exc.strerror}; "
                    "the dongle's state cannot be opened without it"
                ) from None
            if len(fuse) != 32:
                raise StoreCorrupt(f"{self.fuse_path} is not a 32-byte fused secret")
            key = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=None,
                info=b"TVPAY/STORE/v1|" + self.serial.encode(),
            ).derive(fuse)
            self._aead = AESGCM(key)
        return self._aead

    def _seal(self, state: DongleState, generation: int) -> bytes:
        plain = cbor2.dumps(state.to_record())
        sealed_length = len(plain) + 16  # GCM appends a 16-byte tag
        header = self._prefix + _SLOT_META.pack(generation, sealed_length)
        if len(header) + _NONCE + sealed_length > SLOT_SIZE:
            raise OSError(28, "the dongle's state does not fit its storage slot")  # ENOSPC
        nonce = os.urandom(_NONCE)
        return header + nonce + self._cipher().encrypt(nonce, plain, header)

    def _open_slot(self, index: int, raw: bytes) -> _Slot | None:
        """The state in slot ``index``, or None if the slot is empty, torn or corrupt."""
        meta_end = len(self._prefix) + _SLOT_META.size
        if not raw.startswith(self._prefix) or len(raw) < meta_end + _NONCE:
            return None
        generation, sealed_length = _SLOT_META.unpack_from(raw, len(self._prefix))
        body = raw[meta_end : meta_end + _NONCE + sealed_length]
        if len(body) != _NONCE + sealed_length:
            return None
        try:
            plain = self._cipher().decrypt(body[:_NONCE], body[_NONCE:], raw[:meta_end])
        except (InvalidTag, ValueError):
            return None
        try:
            state = DongleState.from_record(cbor2.loads(plain))
        except (StateRecordError, cbor2.CBORDecodeError) as exc:
            # An authentic slot that does not decode was written by other software: say so.
            raise StoreCorrupt(f"{self.path}: {exc}") from None
        if state.serial != self.serial:
            raise StoreCorrupt(f"{self.path} holds the state of another dongle")
        return _Slot(index, generation, state)

    # -- load and save -------------------------------------------------------------------------

    def load(self) -> DongleState:
        try:
            with open(self.path, "rb") as file:
                image = file.read(FILE_SIZE + 1)
        except FileNotFoundError:
            raise StoreError(f"no dongle state at {self.path}; create it with 'factory'") from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
        if len(image) != FILE_SIZE or not image.startswith(MAGIC):
            raise StoreCorrupt(
                f"{self.path} is not a dongle state file of format {FORMAT_VERSION}; "
                "recreate the dongle with 'tvpay-emulator factory'"
            )
        slots = [
            self._open_slot(i, image[i * SLOT_SIZE : (i + 1) * SLOT_SIZE]) for i in range(SLOTS)
        ]
        valid = [s for s in slots if s is not None]
        if not valid:
            raise StoreCorrupt(
                f"{self.path} failed its integrity check in both slots (damage or tampering), "
                f"or it is not the state of dongle {self.serial}; "
                "restore it from a backup or wipe the dongle with 'factory'"
            )
        self._active = max(valid, key=lambda s: s.generation)
        return self._active.state

    def save(self, state: DongleState) -> None:
        """Commit ``state`` to the inactive slot. OSError means the stored state is unchanged."""
        if self._active is None:
            self.load()
        active = self._active
        assert active is not None
        target = _Slot(1 - active.index, active.generation + 1, state)
        slot = self._seal(state, target.generation)
        offset = target.index * SLOT_SIZE
        fd = os.open(self.path, os.O_WRONLY)
        try:
            cut, self.cut_after = self.cut_after, None
            if cut is not None and cut < len(slot):
                _write_all(fd, slot[:cut], offset)
                self._power_cut()
            _write_all(fd, slot, offset)
            os.fdatasync(fd)  # the file keeps its size: only the data has to reach the disk
        finally:
            os.close(fd)
        self._active = target

    def _power_cut(self) -> None:
        self._active = None  # RAM is gone: the next save learns the slots from the file again
        if self.interrupt is not None:
            self.interrupt()
        raise PowerCut(f"power cut while writing the state of {self.serial}")


def stored_serials(directory: Path) -> list[str]:
    """Serials of the dongles whose state files are in ``directory``, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.name[: -len(STATE_SUFFIX)] for p in directory.glob(f"*{STATE_SUFFIX}"))
