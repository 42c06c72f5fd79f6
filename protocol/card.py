"""The purchase card (购电卡): file layouts, MACs, key diversification and APDUs. Pure, no I/O.

Shared by the box (reads the card, runs a write-card block), the gateway's simulated HSM (checks a
card, builds a block) and the emulator (the virtual card and the virtual card meter). The layout is
specified in docs/prepaid.md ("The purchase card"); every integer is big-endian.

Keys: a biller's vending master key ``K_m`` (16 bytes) is derived from the vending secret with
HKDF; each card holds its own ``K_c = AES-CMAC(K_m, "TVPAY-CARD" | serial)``, so a card's key
opens that card only, and the meter's ESAM (which holds ``K_m``) can derive it from the serial.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from dataclasses import dataclass, replace
from typing import ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.errors import ProtocolError

FILE_SIZE = 32
KEY_SIZE = 16
SERIAL_SIZE = 8
CHALLENGE_SIZE = 8
MAC_SIZE = 8  # the MAC closing the purchase and write-back files
SM_MAC_SIZE = 4  # the MAC of a secure-messaging UPDATE BINARY
TAG_SIZE = 8
METER_NO_DIGITS = 12
ISSUER_VERSION = 1

SFI_ISSUER = 0x01
SFI_PURCHASE = 0x02
SFI_WRITEBACK = 0x03
SFIS = (SFI_ISSUER, SFI_PURCHASE, SFI_WRITEBACK)

CLA_PLAIN = 0x00
CLA_SM = 0x04
INS_GET_CHALLENGE = 0x84
INS_READ_BINARY = 0xB0
INS_UPDATE_BINARY = 0xD6

SW_OK = 0x9000
SW_MEMORY_FAILURE = 0x6581
SW_WRONG_LENGTH = 0x6700
SW_SECURITY = 0x6982
SW_NO_SESSION = 0x6985
SW_FILE_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_UNKNOWN_INS = 0x6D00
SW_WRONG_CLASS = 0x6E00

STATUS_MESSAGES: dict[int, str] = {
    SW_OK: "ok",
    SW_MEMORY_FAILURE: (
        "memory failure: the card could not store the write and kept its old file; its session "
        "is over, start again with a new challenge"
    ),
    SW_WRONG_LENGTH: "wrong length: the card refused the command's length bytes",
    SW_SECURITY: (
        "security status not satisfied: the card refused the write (wrong MAC, a plain write or "
        "a read-only file); its session is over, start again with a new challenge"
    ),
    SW_NO_SESSION: (
        "no secure-messaging session: the card was reset or removed since its challenge; "
        "start again with a new challenge"
    ),
    SW_FILE_NOT_FOUND: "file not found: the card has no elementary file with that short id",
    SW_WRONG_P1P2: "incorrect P1-P2: the card refused the command's parameters",
    SW_UNKNOWN_INS: "unknown instruction: this is not a purchase card, or the command is wrong",
    SW_WRONG_CLASS: "class not supported: the card refused the command's CLA byte",
}

_ISSUER = struct.Struct(">B8s4s12sB6s")
_PURCHASE = struct.Struct(">III8sI8s")
_WRITEBACK = struct.Struct(">BIiII7s8s")
_U32 = (0, 0xFFFFFFFF)
_I32 = (-0x80000000, 0x7FFFFFFF)
_HEX_FILE = re.compile(f"[0-9a-fA-F]{{{2 * FILE_SIZE}}}")


class CardError(ProtocolError):
    """Card data (a file, a key, an answer) is malformed or out of range."""


class CardStatusError(CardError):
    """The card answered an APDU with a status word other than 9000."""

    def __init__(self, sw: int) -> None:
        self.sw = sw
        text = STATUS_MESSAGES.get(sw, "unexpected status word from the card")
        super().__init__(f"card status {sw:04X}: {text}")


def _cmac(key: bytes, message: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


def _need_bytes(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise CardError(f"{name} must be {size} bytes")
    return value


def _need_int(name: str, value: object, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CardError(f"{name} must be an integer from {low} to {high}")


def _need_file(name: str, data: object) -> bytes:
    return _need_bytes(f"the {name} file", data, FILE_SIZE)


# -- keys -------------------------------------------------------------------------------------


def vending_master_key(secret: bytes, biller: str) -> bytes:
    """The biller's vending master key K_m = HKDF-SHA256(secret, info="TVPAY/VEND/" + biller)."""
    if not isinstance(secret, bytes) or len(secret) < KEY_SIZE:
        raise CardError(f"the vending secret must be at least {KEY_SIZE} bytes")
    if not isinstance(biller, str) or not biller:
        raise CardError("the biller code must be a non-empty string")
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=b"TVPAY/VEND/" + biller.encode()
    ).derive(secret)


def card_key(master: bytes, serial: bytes) -> bytes:
    """The card's own key K_c = AES-CMAC(K_m, "TVPAY-CARD" | serial)."""
    _need_bytes("the master key", master, KEY_SIZE)
    _need_bytes("the card serial", serial, SERIAL_SIZE)
    return _cmac(master, b"TVPAY-CARD" + serial)


def biller_hash(biller: str) -> bytes:
    """The 4 bytes that name the biller in the issuer file: SHA-256(biller)[:4]."""
    if not isinstance(biller, str) or not biller:
        raise CardError("the biller code must be a non-empty string")
    return hashlib.sha256(biller.encode()).digest()[:4]


def purchase_tag(purchase_id: str) -> bytes:
    """The 8 bytes that name a purchase on the card: SHA-256(purchase_id)[:8]."""
    if not isinstance(purchase_id, str) or not purchase_id:
        raise CardError("the purchase id must be a non-empty string")
    return hashlib.sha256(purchase_id.encode()).digest()[:TAG_SIZE]


# -- files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerFile:
    """EF 0x01, written at personalisation and never again: who the card belongs to."""

    serial: bytes
    biller_hash: bytes
    meter_no: str
    key_version: int = 1

    def __post_init__(self) -> None:
        _need_bytes("the card serial", self.serial, SERIAL_SIZE)
        _need_bytes("the biller hash", self.biller_hash, 4)
        if (
            not isinstance(self.meter_no, str)
            or len(self.meter_no) != METER_NO_DIGITS
            or not self.meter_no.isascii()
            or not self.meter_no.isdigit()
        ):
            raise CardError(f"the meter number must be {METER_NO_DIGITS} ASCII digits")
        _need_int("the key version", self.key_version, (0, 0xFF))

    @classmethod
    def parse(cls, data: bytes) -> IssuerFile:
        version, serial, bhash, meter_no, key_version, reserved = _ISSUER.unpack(
            _need_file("issuer", data)
        )
        if version != ISSUER_VERSION:
            raise CardError(f"issuer file version {version} is not {ISSUER_VERSION}")
        if any(reserved):
            raise CardError("the issuer file's reserved bytes are not zero")
        try:
            text = meter_no.decode("ascii")
        except UnicodeDecodeError:
            raise CardError("the meter number in the issuer file is not ASCII") from None
        return cls(serial, bhash, text, key_version)

    def to_bytes(self) -> bytes:
        return _ISSUER.pack(
            ISSUER_VERSION,
            self.serial,
            self.biller_hash,
            self.meter_no.encode("ascii"),
            self.key_version,
            bytes(6),
        )


@dataclass(frozen=True)
class PurchaseRecord:
    """EF 0x02: the last purchase written to the card; count 0 on a fresh card."""

    count: int
    amount_fen: int
    energy_wh: int
    tag: bytes
    issued_at: int
    mac: bytes = bytes(MAC_SIZE)

    def __post_init__(self) -> None:
        _need_int("the purchase count", self.count, _U32)
        _need_int("the amount in fen", self.amount_fen, _U32)
        _need_int("the energy in Wh", self.energy_wh, _U32)
        _need_bytes("the purchase tag", self.tag, TAG_SIZE)
        _need_int("the issue time", self.issued_at, _U32)
        _need_bytes("the purchase mac", self.mac, MAC_SIZE)

    @classmethod
    def blank(cls) -> PurchaseRecord:
        """The record of a fresh card (unsigned): count 0, all zero."""
        return cls(0, 0, 0, bytes(TAG_SIZE), 0)

    @classmethod
    def parse(cls, data: bytes) -> PurchaseRecord:
        return cls(*_PURCHASE.unpack(_need_file("purchase", data)))

    def to_bytes(self) -> bytes:
        return _PURCHASE.pack(
            self.count, self.amount_fen, self.energy_wh, self.tag, self.issued_at, self.mac
        )

    def _expected_mac(self, key: bytes, issuer: IssuerFile) -> bytes:
        _need_bytes("the card key", key, KEY_SIZE)
        return _cmac(key, b"PUR" + issuer.to_bytes() + self.to_bytes()[:24])[:MAC_SIZE]

    def sign(self, card_key: bytes, issuer: IssuerFile) -> PurchaseRecord:
        return replace(self, mac=self._expected_mac(card_key, issuer))

    def verify(self, card_key: bytes, issuer: IssuerFile) -> bool:
        return hmac.compare_digest(self.mac, self._expected_mac(card_key, issuer))


@dataclass(frozen=True)
class WriteBack:
    """EF 0x03: what the meter reported at its last insertion, or empty once the vending side
    has read it (the first APDU of every write-card block clears it)."""

    EMPTY: ClassVar[WriteBack]

    full: bool
    meter_count: int
    remaining_fen: int
    total_used_wh: int
    at: int
    mac: bytes = bytes(MAC_SIZE)

    def __post_init__(self) -> None:
        if not isinstance(self.full, bool):
            raise CardError("the write-back flag must be a bool")
        _need_int("the meter count", self.meter_count, _U32)
        _need_int("the remaining balance in fen", self.remaining_fen, _I32)
        _need_int("the total energy used in Wh", self.total_used_wh, _U32)
        _need_int("the write-back time", self.at, _U32)
        _need_bytes("the write-back mac", self.mac, MAC_SIZE)
        if not self.full and self.to_bytes() != bytes(FILE_SIZE):
            raise CardError("an empty write-back must be all zero")

    @classmethod
    def parse(cls, data: bytes) -> WriteBack:
        flag, count, remaining, used, at, reserved, mac = _WRITEBACK.unpack(
            _need_file("write-back", data)
        )
        if flag not in (0, 1):
            raise CardError(f"write-back flag {flag} is neither 0 (empty) nor 1 (full)")
        if any(reserved):
            raise CardError("the write-back file's reserved bytes are not zero")
        return cls(flag == 1, count, remaining, used, at, mac)

    def to_bytes(self) -> bytes:
        return _WRITEBACK.pack(
            int(self.full),
            self.meter_count,
            self.remaining_fen,
            self.total_used_wh,
            self.at,
            bytes(7),
            self.mac,
        )

    def _expected_mac(self, key: bytes, issuer: IssuerFile) -> bytes:
        _need_bytes("the card key", key, KEY_SIZE)
        return _cmac(key, b"WBK" + issuer.to_bytes() + self.to_bytes()[:24])[:MAC_SIZE]

    def sign(self, card_key: bytes, issuer: IssuerFile) -> WriteBack:
        if not self.full:
            raise CardError("an empty write-back carries no mac")
        return replace(self, mac=self._expected_mac(card_key, issuer))

    def verify(self, card_key: bytes, issuer: IssuerFile) -> bool:
        """True for a full write-back with a valid mac, and for the empty one (which has no mac:
        only an authenticated UPDATE can put it on a card)."""
        if not self.full:
            return True
        return hmac.compare_digest(self.mac, self._expected_mac(card_key, issuer))


WriteBack.EMPTY = WriteBack(False, 0, 0, 0, 0)


# -- APDUs ------------------------------------------------------------------------------------


def _need_sfi(sfi: object) -> int:
    if isinstance(sfi, bool) or not isinstance(sfi, int) or sfi not in SFIS:
        raise CardError(f"the short file id must be one of {SFIS}")
    return sfi


def get_challenge() -> bytes:
    """GET CHALLENGE: 8 random bytes, and a new secure-messaging session with seq 0."""
    return bytes([CLA_PLAIN, INS_GET_CHALLENGE, 0x00, 0x00, CHALLENGE_SIZE])


def read_binary(sfi: int) -> bytes:
    """READ BINARY of the whole 32-byte file ``sfi``."""
    return bytes([CLA_PLAIN, INS_READ_BINARY, 0x80 | _need_sfi(sfi), 0x00, FILE_SIZE])


def sm_mac(*, card_key: bytes, challenge: bytes, seq: int, header: bytes, data: bytes) -> bytes:
    """The 4-byte MAC of an SM UPDATE: AES-CMAC(K_c, challenge | seq | header | data)[:4]."""
    _need_bytes("the card key", card_key, KEY_SIZE)
    _need_bytes("the challenge", challenge, CHALLENGE_SIZE)
    _need_int("the sequence number", seq, (0, 0xFF))
    return _cmac(card_key, challenge + bytes([seq]) + header + data)[:SM_MAC_SIZE]


def sm_update(*, card_key: bytes, challenge: bytes, seq: int, sfi: int, data: bytes) -> bytes:
    """UPDATE BINARY of the whole file ``sfi`` with secure messaging (CLA 04, 4-byte MAC)."""
    _need_bytes("the file data", data, FILE_SIZE)
    header = bytes([CLA_SM, INS_UPDATE_BINARY, 0x80 | _need_sfi(sfi), 0x00])
    mac = sm_mac(card_key=card_key, challenge=challenge, seq=seq, header=header, data=data)
    return header + bytes([FILE_SIZE + SM_MAC_SIZE]) + data + mac


def write_card_block(
    *, card_key: bytes, challenge: bytes, issuer: IssuerFile, record: PurchaseRecord
) -> list[bytes]:
    """The write-card block for ``record``: clear the write-back, then write the purchase record
    (signed here for ``issuer``). Both APDUs belong to the session opened by ``challenge``; a
    card removed between them still holds its old count, and a new session starts again."""
    signed = record.sign(card_key, issuer)
    return [
        sm_update(
            card_key=card_key,
            challenge=challenge,
            seq=0,
            sfi=SFI_WRITEBACK,
            data=WriteBack.EMPTY.to_bytes(),
        ),
        sm_update(
            card_key=card_key, challenge=challenge, seq=1, sfi=SFI_PURCHASE, data=signed.to_bytes()
        ),
    ]


def check_response(rapdu: bytes) -> bytes:
    """The data of a card's answer; CardStatusError unless its status word is 9000."""
    if not isinstance(rapdu, bytes) or len(rapdu) < 2:
        raise CardError("the card's answer is shorter than a status word")
    sw = int.from_bytes(rapdu[-2:], "big")
    if sw != SW_OK:
        raise CardStatusError(sw)
    return rapdu[:-2]


# -- the card as read by the box --------------------------------------------------------------


@dataclass(frozen=True)
class CardRead:
    """The three files as the box read them, sent to the gateway as hex."""

    issuer: bytes
    purchase: bytes
    writeback: bytes

    def __post_init__(self) -> None:
        for name in ("issuer", "purchase", "writeback"):
            _need_file(name, getattr(self, name))

    def to_json(self) -> dict[str, str]:
        return {
            "issuer": self.issuer.hex(),
            "purchase": self.purchase.hex(),
            "writeback": self.writeback.hex(),
        }

    @classmethod
    def from_json(cls, value: object) -> CardRead:
        """A CardRead from untrusted JSON: exactly the three keys, each 64 hex digits."""
        names = ("issuer", "purchase", "writeback")
        if not isinstance(value, dict) or set(value) != set(names):
            raise CardError(
                'a card read is an object with exactly "issuer", "purchase", "writeback"'
            )
        files = []
        for name in names:
            text = value[name]
            if not isinstance(text, str) or not _HEX_FILE.fullmatch(text):
                raise CardError(f'card "{name}" must be {2 * FILE_SIZE} hex digits')
            files.append(bytes.fromhex(text))
        return cls(*files)
