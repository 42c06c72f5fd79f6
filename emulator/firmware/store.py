"""The virtual dongle's non-volatile memory: one file per dongle, written atomically, encrypted.

File layout::

    magic "TVPAYDGL" | format version (1) | serial length (1) | serial | nonce (12) | AES-256-GCM

The whole state record (CBOR) is sealed with AES-256-GCM under a per-dongle device key; the header
is the associated data. The tag doubles as the checksum: a torn or corrupted file fails to open,
it is never half-read. The device key is HKDF-SHA-256 of a 32-byte "fused" secret kept in a
separate file (``<serial>.fuse``, 0600, written once at manufacture). On hardware that secret is
burnt into the secure element and never readable; here anyone who can read both files can read the
keys. It keeps keys out of plain sight in state files and backups, nothing more.

Writes go to a temporary file, are fsynced, renamed over the old file and the directory is fsynced:
killed at any instruction, the dongle comes back with the old state or the new one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from emulator.firmware.state import DongleState, StateRecordError

MAGIC = b"TVPAYDGL"
FORMAT_VERSION = 1
STATE_SUFFIX = ".dongle"
FUSE_SUFFIX = ".fuse"
_NONCE = 12
_MAX_FILE = 1 << 20


class StoreError(Exception):
    """The dongle's state could not be read or written."""


class StoreCorrupt(StoreError):
    """The state file is damaged or was not written by this dongle."""


class PowerCut(BaseException):  # not an Exception: firmware code must not catch it and carry on
    """The power went while the store was writing (fault injection): the dongle is gone."""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DongleStore:
    """The state file of one dongle in ``directory``."""

    def __init__(self, directory: Path, serial: str) -> None:
        self.directory = Path(directory)
        self.serial = serial
        self.path = self.directory / f"{serial}{STATE_SUFFIX}"
        self.fuse_path = self.directory / f"{serial}{FUSE_SUFFIX}"
        self._header = MAGIC + bytes([FORMAT_VERSION, len(serial.encode())]) + serial.encode()
        self._aead: AESGCM | None = None
        # Fault injection: after this many bytes of the next write, ``interrupt`` is called; it
        # raises PowerCut (in-process) or ends the process (virtual cable).
        self.cut_after: int | None = None
        self.interrupt: Callable[[], None] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, state: DongleState) -> None:
        """Burn the fuse and write the first state; refuses to overwrite an existing dongle."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.fuse_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.save(state)

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

    def load(self) -> DongleState:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"no dongle state at {self.path}; create it with 'factory'") from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from None
        if len(blob) > _MAX_FILE or not blob.startswith(self._header):
            raise StoreCorrupt(f"{self.path} is not the state file of dongle {self.serial}")
        body = blob[len(self._header) :]
        try:
            plain = self._cipher().decrypt(body[:_NONCE], body[_NONCE:], self._header)
        except (InvalidTag, ValueError):
            raise StoreCorrupt(
                f"{self.path} failed its integrity check (torn write or tampering); "
                "restore it from a backup or wipe the dongle with 'factory'"
            ) from None
        try:
            state = DongleState.from_record(cbor2.loads(plain))
        except (StateRecordError, cbor2.CBORDecodeError) as exc:
            raise StoreCorrupt(f"{self.path}: {exc}") from None
        if state.serial != self.serial:
            raise StoreCorrupt(f"{self.path} holds the state of another dongle")
        return state

    def save(self, state: DongleState) -> None:
        """Replace the stored state atomically. OSError means the old state is still in place."""
        nonce = os.urandom(_NONCE)
        sealed = self._cipher().encrypt(nonce, cbor2.dumps(state.to_record()), self._header)
        blob = self._header + nonce + sealed
        tmp = self.directory / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            cut, self.cut_after = self.cut_after, None
            if cut is not None and cut < len(blob):
                os.write(fd, blob[:cut])
                self._power_cut()
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.directory)

    def _power_cut(self) -> None:
        if self.interrupt is not None:
            self.interrupt()
        raise PowerCut(f"power cut while writing the state of {self.serial}")


def stored_serials(directory: Path) -> list[str]:
    """Serials of the dongles whose state files are in ``directory``, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.name[: -len(STATE_SUFFIX)] for p in directory.glob(f"*{STATE_SUFFIX}"))
