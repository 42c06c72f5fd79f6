"""Decoder key generation algorithm 02 (DKGA02, IEC 62055-41), DES based.

PAN block     = the IIN's last 5 digits + the 11-digit DRN (or the IIN's last 3 + the 13-digit
                DRN), each decimal digit one nibble; all-zero DRN part for common keys (type 3)
control block = key type (1) + SGC (6) + TI (2) + KRN (1) + FFFFFF, as nibbles
X             = PAN block XOR control block
decoder key   = DES(vending key, X) XOR X XOR vending key
"""

from __future__ import annotations

from protocol.sts.dea import DES_KEY_BYTES, des_encrypt
from protocol.sts.errors import TokenError
from protocol.sts.identity import MeterIdentity

_COMMON_KEY_TYPE = 3


def pan_block(meter: MeterIdentity) -> bytes:
    """The 8-byte primary account number block of ``meter``."""
    iin_part = meter.iin[-5:] if len(meter.drn) == 11 else meter.iin[-3:]
    drn_part = "0" * len(meter.drn) if meter.key_type == _COMMON_KEY_TYPE else meter.drn
    return bytes.fromhex(iin_part + drn_part)


def control_block(meter: MeterIdentity) -> bytes:
    """The 8-byte control block of ``meter``."""
    return bytes.fromhex(f"{meter.key_type}{meter.sgc:06d}{meter.ti:02d}{meter.krn}FFFFFF")


def derive_decoder_key(*, vending_key: bytes, meter: MeterIdentity) -> bytes:
    """The 8-byte decoder key of ``meter`` under the DES ``vending_key`` (DKGA02)."""
    if not isinstance(vending_key, bytes) or len(vending_key) != DES_KEY_BYTES:
        raise TokenError(f"the vending key must be {DES_KEY_BYTES} bytes (a DES key)")
    if not isinstance(meter, MeterIdentity):
        raise TokenError("the meter must be a MeterIdentity")
    x = bytes(a ^ b for a, b in zip(pan_block(meter), control_block(meter), strict=True))
    encrypted = des_encrypt(vending_key, x)
    return bytes(e ^ d ^ k for e, d, k in zip(encrypted, x, vending_key, strict=True))
