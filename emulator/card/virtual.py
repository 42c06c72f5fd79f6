"""The virtual purchase card: a CPU card answering the APDUs of docs/prepaid.md.

The card interprets no file content (the MACs inside the files are for the meter and the vending
side); it enforces who may write: only UPDATE BINARY with secure messaging, MAC'ed with the card
key for the current challenge and sequence number, on the purchase or write-back file.

Checks run in this order, and the first failing one gives the status word: class (6E00),
instruction (6D00), length (6700), P1-P2 (6A86), file (6A82), session (6985), then for an UPDATE
the MAC and the file's write access (6982); an UPDATE with CLA 00 (no secure messaging) is
refused 6982 whatever follows. A refused UPDATE for security reasons (no secure
messaging, wrong MAC, read-only file) or a failed save (6581) ends the session and writes nothing.
A GET CHALLENGE replaces any session; ``reset`` (power off/on) ends it. Every other refusal leaves
the session as it was. No APDU raises: every byte string gets a status word.
"""

from __future__ import annotations

import hmac
import os
import threading
from pathlib import Path

from emulator.card.image import CardImage, load_image, save_image
from protocol.card import (
    CHALLENGE_SIZE,
    CLA_PLAIN,
    CLA_SM,
    FILE_SIZE,
    INS_GET_CHALLENGE,
    INS_READ_BINARY,
    INS_UPDATE_BINARY,
    SFI_ISSUER,
    SFIS,
    SM_MAC_SIZE,
    SW_FILE_NOT_FOUND,
    SW_MEMORY_FAILURE,
    SW_NO_SESSION,
    SW_OK,
    SW_SECURITY,
    SW_UNKNOWN_INS,
    SW_WRONG_CLASS,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    sm_mac,
)

ATR_PREFIX = bytes.fromhex("3B6C0000") + b"TVPC"  # T=0, 12 historical bytes: "TVPC" + serial
_MAX_SEQ = 0xFF


def _sw(sw: int, data: bytes = b"") -> bytes:
    return data + sw.to_bytes(2, "big")


def _file_p1(p1: int, p2: int) -> int | None:
    """The short file id named by P1 (100sssss) with P2 = 0 (whole file), None if malformed."""
    if p1 & 0xE0 != 0x80 or p2 != 0:
        return None
    return p1 & 0x1F


class VirtualPurchaseCard:
    """One card. With a ``path`` every successful UPDATE is saved (atomically) before it is
    acknowledged, and ``load`` brings the card back after a restart."""

    def __init__(self, image: CardImage, path: Path | None = None) -> None:
        self._image = image
        self._path = path
        self._challenge: bytes | None = None
        self._seq = 0
        # The slot's USB thread and the automation API (moving the card) may reach it at once.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> VirtualPurchaseCard:
        """The card kept in ``path`` (CardImageError if the file is missing or damaged)."""
        return cls(load_image(path), path)

    @property
    def serial(self) -> bytes:
        return self._image.serial

    @property
    def path(self) -> Path | None:
        return self._path

    def reset(self) -> bytes:
        """Power the card off and on: the session ends; the answer to reset."""
        with self._lock:
            self._end_session()
            return ATR_PREFIX + self._image.serial

    def transmit(self, apdu: bytes) -> bytes:
        """Process one command APDU; the response APDU (data + status word)."""
        if not isinstance(apdu, bytes):
            raise TypeError("an APDU is bytes")
        with self._lock:
            return self._process(apdu)

    def _process(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return _sw(SW_WRONG_LENGTH)
        cla, ins, p1, p2 = apdu[:4]
        if cla not in (CLA_PLAIN, CLA_SM):
            return _sw(SW_WRONG_CLASS)
        if ins == INS_GET_CHALLENGE:
            return self._get_challenge(cla, p1, p2, apdu[4:])
        if ins == INS_READ_BINARY:
            return self._read_binary(cla, p1, p2, apdu[4:])
        if ins == INS_UPDATE_BINARY:
            return self._update_binary(apdu)
        return _sw(SW_UNKNOWN_INS)

    # -- instructions --------------------------------------------------------------------------

    def _get_challenge(self, cla: int, p1: int, p2: int, body: bytes) -> bytes:
        if cla != CLA_PLAIN:
            return _sw(SW_WRONG_CLASS)
        if body != bytes([CHALLENGE_SIZE]):
            return _sw(SW_WRONG_LENGTH)
        if p1 or p2:
            return _sw(SW_WRONG_P1P2)
        self._challenge = os.urandom(CHALLENGE_SIZE)
        self._seq = 0
        return _sw(SW_OK, self._challenge)

    def _read_binary(self, cla: int, p1: int, p2: int, body: bytes) -> bytes:
        if cla != CLA_PLAIN:
            return _sw(SW_WRONG_CLASS)
        if body != bytes([FILE_SIZE]):
            return _sw(SW_WRONG_LENGTH)
        sfi = _file_p1(p1, p2)
        if sfi is None:
            return _sw(SW_WRONG_P1P2)
        if sfi not in SFIS:
            return _sw(SW_FILE_NOT_FOUND)
        return _sw(SW_OK, self._image.file(sfi))

    def _update_binary(self, apdu: bytes) -> bytes:
        if apdu[0] != CLA_SM:
            # Every file's write access requires secure messaging: a plain write is an attack.
            self._end_session()
            return _sw(SW_SECURITY)
        header, body = apdu[:4], apdu[4:]
        if len(body) != 1 + FILE_SIZE + SM_MAC_SIZE or body[0] != FILE_SIZE + SM_MAC_SIZE:
            return _sw(SW_WRONG_LENGTH)
        sfi = _file_p1(apdu[2], apdu[3])
        if sfi is None:
            return _sw(SW_WRONG_P1P2)
        if sfi not in SFIS:
            return _sw(SW_FILE_NOT_FOUND)
        if self._challenge is None:
            return _sw(SW_NO_SESSION)
        data, mac = body[1 : 1 + FILE_SIZE], body[1 + FILE_SIZE :]
        expected = sm_mac(
            card_key=self._image.card_key,
            challenge=self._challenge,
            seq=self._seq,
            header=header,
            data=data,
        )
        if not hmac.compare_digest(mac, expected) or sfi == SFI_ISSUER:
            self._end_session()
            return _sw(SW_SECURITY)
        updated = self._image.with_file(sfi, data)
        if self._path is not None:
            try:
                save_image(self._path, updated)
            except OSError:
                self._end_session()
                return _sw(SW_MEMORY_FAILURE)
        self._image = updated
        self._seq += 1
        if self._seq > _MAX_SEQ:  # the one-byte sequence number would wrap: a new session
            self._end_session()
        return _sw(SW_OK)

    def _end_session(self) -> None:
        self._challenge = None
        self._seq = 0
