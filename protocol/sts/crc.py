"""The token's CRC-16 (IEC 62055-41): generator x^16 + x^15 + x^2 + 1, processed bit-reversed
(0xA001) from an initial 0xFFFF, over the 56-bit class..amount number as 7 big-endian bytes.
The same algorithm is catalogued as CRC-16/MODBUS (check value 0x4B37 for b"123456789")."""

from __future__ import annotations

_POLY_REFLECTED = 0xA001


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of ``data``."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
    return crc


def token_crc(head: int) -> int:
    """The CRC field of a token whose class, subclass, RND, TID and amount form ``head``
    (50 bits, class on top). The standard stores the CRC low byte first, so the 16-bit field
    is the register with its two bytes swapped."""
    crc = crc16(head.to_bytes(7, "big"))
    return ((crc & 0xFF) << 8) | (crc >> 8)
