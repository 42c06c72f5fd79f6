"""Class-0 credit tokens (IEC 62055-41): the 64-bit data block, its encryption, the class-bit
transposition into 66 bits and the 20 decimal digits, and the way back.

Data block, most significant bit first:
    subclass (4) | RND (4) | TID (24) | amount (16) | CRC (16)
The CRC covers class (2) | subclass | RND | TID | amount. After encryption, bits 28 and 27 of
the 64-bit ciphertext are moved to the top (bits 65 and 64) and the 2-bit class takes their
place; the 66-bit number is written as 20 decimal digits with leading zeros.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from protocol.sts.amount import decode_amount, encode_amount
from protocol.sts.crc import token_crc
from protocol.sts.dea import DES_KEY_BYTES, dea_decrypt, dea_encrypt
from protocol.sts.errors import TokenError
from protocol.sts.sta import sta_decrypt, sta_encrypt
from protocol.sts.tid import TID_MAX

TOKEN_DIGITS = 20
CREDIT_CLASS = 0
ELECTRICITY_SUBCLASS = 0
_TOKEN_LIMIT = 1 << 66
_CLASS_SHIFT = 27  # the class takes ciphertext bits 28 and 27
_CLASS_MASK = 0b11 << _CLASS_SHIFT
_BLOCK_MASK = (1 << 64) - 1


class Algorithm(enum.IntEnum):
    """Token encryption algorithms, by their number in the standard."""

    STA = 7  # EA07, the Standard Transfer Algorithm
    DEA = 9  # EA09, DES


_CIPHERS: dict[Algorithm, tuple[Callable[[bytes, int], int], Callable[[bytes, int], int]]] = {
    Algorithm.STA: (sta_encrypt, sta_decrypt),
    Algorithm.DEA: (dea_encrypt, dea_decrypt),
}


@dataclass(frozen=True)
class TokenData:
    """What a token carries once decrypted and its CRC checked. ``units`` are 0.1 kWh."""

    cls: int
    subclass: int
    rnd: int
    tid: int
    units: int


def _check_key(decoder_key: object) -> bytes:
    if not isinstance(decoder_key, bytes) or len(decoder_key) != DES_KEY_BYTES:
        raise TokenError(f"the decoder key must be {DES_KEY_BYTES} bytes")
    return decoder_key


def _cipher(algorithm: object) -> tuple[Callable[[bytes, int], int], Callable[[bytes, int], int]]:
    try:
        return _CIPHERS[Algorithm(algorithm)]
    except ValueError:
        raise TokenError(
            f"unknown token encryption algorithm {algorithm!r} (EA07 or EA09)"
        ) from None


def _check_field(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise TokenError(f"{name} must be an integer from 0 to {high}, not {value!r}")
    return value


def _transpose(ciphertext: int, cls: int) -> int:
    """The 66-bit token number: ciphertext bits 28 and 27 on top, the class in their place."""
    displaced = (ciphertext & _CLASS_MASK) >> _CLASS_SHIFT
    return (displaced << 64) | (ciphertext & ~_CLASS_MASK) | (cls << _CLASS_SHIFT)


def _untranspose(number: int) -> tuple[int, int]:
    """The class and the 64-bit ciphertext of a 66-bit token number."""
    cls = (number & _CLASS_MASK) >> _CLASS_SHIFT
    ciphertext = (number & _BLOCK_MASK & ~_CLASS_MASK) | ((number >> 64) << _CLASS_SHIFT)
    return cls, ciphertext


def _head(cls: int, subclass: int, rnd: int, tid: int, amount: int) -> int:
    """The 50 bits the CRC covers."""
    return (cls << 48) | (subclass << 44) | (rnd << 40) | (tid << 16) | amount


def credit_token(
    *,
    decoder_key: bytes,
    tid: int,
    units: int,
    rnd: int,
    subclass: int = ELECTRICITY_SUBCLASS,
    algorithm: Algorithm = Algorithm.DEA,
) -> str:
    """The 20 digits of a class-0 credit token of ``units`` (0.1 kWh for electricity) with
    token identifier ``tid``, random nibble ``rnd``, encrypted with ``decoder_key``."""
    key = _check_key(decoder_key)
    _check_field("the token identifier", tid, TID_MAX)
    _check_field("the random number", rnd, 15)
    _check_field("the subclass", subclass, 15)
    if isinstance(units, int) and not isinstance(units, bool) and units == 0:
        raise TokenError("a credit token carries at least 1 unit (0.1 kWh)")
    amount = encode_amount(units)
    crc = token_crc(_head(CREDIT_CLASS, subclass, rnd, tid, amount))
    block = (subclass << 60) | (rnd << 56) | (tid << 32) | (amount << 16) | crc
    encrypt, _ = _cipher(algorithm)
    number = _transpose(encrypt(key, block), CREDIT_CLASS)
    return f"{number:0{TOKEN_DIGITS}d}"


def decode_token(
    digits: str, *, decoder_key: bytes, algorithm: Algorithm = Algorithm.DEA
) -> TokenData:
    """Decrypt and check the 20 ``digits`` of a class-0 token with ``decoder_key``.

    Raises ``TokenError`` for anything but 20 ASCII digits naming a 66-bit number, for a CRC
    that does not match (a mistyped token, or one made for another meter) and for a class other
    than 0 (credit)."""
    key = _check_key(decoder_key)
    if not isinstance(digits, str) or len(digits) != TOKEN_DIGITS:
        raise TokenError(f"a token is {TOKEN_DIGITS} digits; check the count and type it again")
    if not (digits.isascii() and digits.isdigit()):
        raise TokenError("a token has only the digits 0 to 9; type it again")
    number = int(digits)
    if number >= _TOKEN_LIMIT:
        raise TokenError("these 20 digits are not a token (too large); check them and type again")
    cls, ciphertext = _untranspose(number)
    _, decrypt = _cipher(algorithm)
    block = decrypt(key, ciphertext)
    subclass, rnd = block >> 60, (block >> 56) & 0xF
    tid, amount, crc = (block >> 32) & TID_MAX, (block >> 16) & 0xFFFF, block & 0xFFFF
    if token_crc(_head(cls, subclass, rnd, tid, amount)) != crc:
        raise TokenError(
            "the token does not check (CRC): it was mistyped or is for another meter; "
            "type it again from the receipt"
        )
    if cls != CREDIT_CLASS:
        raise TokenError(f"class {cls} tokens (test and management) are not accepted here")
    return TokenData(cls=cls, subclass=subclass, rnd=rnd, tid=tid, units=decode_amount(amount))
