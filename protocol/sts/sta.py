"""STA, the Standard Transfer Algorithm (token encryption algorithm EA07, IEC 62055-41).

Sixteen rounds over the 64-bit block, bits numbered from the least significant (bit 0):
substitute each nibble through one of two 4-bit tables, chosen by the top bit of the key nibble
at the same place, then move bit i to PERMUTATION[i], then rotate the key left by one. The round
key starts as the decoder key complemented and rotated right by 12 bits. Decryption runs the
rounds backwards with the inverse tables. The tables are the standard's.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1
_ROUNDS = 16
SUBSTITUTION_1 = (14, 10, 7, 9, 12, 3, 2, 5, 13, 0, 15, 1, 4, 8, 6, 11)
SUBSTITUTION_2 = (12, 8, 2, 13, 7, 6, 1, 3, 11, 5, 9, 15, 0, 4, 10, 14)
PERMUTATION = (
    55, 42, 10, 18, 24, 21, 44, 35, 2, 22, 56, 43, 27, 58, 9, 50,
    6, 36, 12, 61, 37, 38, 53, 16, 62, 3, 7, 4, 32, 20, 63, 25,
    51, 52, 54, 33, 49, 19, 46, 29, 48, 31, 23, 30, 41, 28, 13, 5,
    40, 60, 39, 11, 15, 17, 1, 0, 57, 34, 59, 8, 47, 14, 45, 26,
)  # fmt: skip


def _inverse(table: tuple[int, ...]) -> tuple[int, ...]:
    inverse = [0] * len(table)
    for index, value in enumerate(table):
        inverse[value] = index
    return tuple(inverse)


_INVERSE_1 = _inverse(SUBSTITUTION_1)
_INVERSE_2 = _inverse(SUBSTITUTION_2)
_INVERSE_PERMUTATION = _inverse(PERMUTATION)


def _rotate_left(value: int, bits: int) -> int:
    bits %= 64
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def _round_keys(key: bytes) -> list[int]:
    round_key = _rotate_left(~int.from_bytes(key, "big") & _MASK, -12)
    keys = []
    for _ in range(_ROUNDS):
        keys.append(round_key)
        round_key = _rotate_left(round_key, 1)
    return keys


def _substitute(block: int, round_key: int, first: tuple[int, ...], second: tuple[int, ...]) -> int:
    out = 0
    for nibble in range(16):
        table = second if (round_key >> (4 * nibble + 3)) & 1 else first
        out |= table[(block >> (4 * nibble)) & 0xF] << (4 * nibble)
    return out


def _permute(block: int, table: tuple[int, ...]) -> int:
    out = 0
    for bit, target in enumerate(table):
        out |= ((block >> bit) & 1) << target
    return out


def sta_encrypt(key: bytes, block: int) -> int:
    """EA07 encryption of the 64-bit ``block`` under the 8-byte decoder ``key``."""
    for round_key in _round_keys(key):
        block = _permute(_substitute(block, round_key, SUBSTITUTION_1, SUBSTITUTION_2), PERMUTATION)
    return block


def sta_decrypt(key: bytes, block: int) -> int:
    """The inverse of ``sta_encrypt``."""
    for round_key in reversed(_round_keys(key)):
        block = _substitute(
            _permute(block, _INVERSE_PERMUTATION), round_key, _INVERSE_1, _INVERSE_2
        )
    return block
