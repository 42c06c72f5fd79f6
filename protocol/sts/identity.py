"""A token meter's identity as the vending system knows it (IEC 62055-41 meter PAN and key data)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.sts.errors import TokenError

# The legacy IIN every 11-digit meter number sits under; 13-digit numbers go with IIN 0000.
LEGACY_IIN = "600727"
SHORT_IIN = "0000"


def luhn_check_digit(digits: str) -> int:
    """The Luhn check digit that follows ``digits`` (the DRN's last digit is one)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return (10 - total % 10) % 10


def _is_digits(value: object, lengths: tuple[int, ...]) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit() and len(value) in lengths


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TokenError(f"{name} must be an integer from {low} to {high}, not {value!r}")


@dataclass(frozen=True)
class MeterIdentity:
    """What the decoder key of one meter is derived from.

    ``drn``: the decoder reference number printed on the meter, 11 or 13 digits, the last one
    its Luhn check digit. ``sgc``: supply group code (6 digits). ``ti``: tariff index.
    ``krn``: key revision number. ``iin``: issuer identification number, ``600727`` for 11-digit
    DRNs, ``0000`` for 13-digit ones. ``ken``: key expiry number (255: never). ``key_type``:
    0 initialisation, 1 default, 2 unique, 3 common.
    """

    drn: str
    sgc: int
    ti: int
    krn: int
    iin: str = LEGACY_IIN
    ken: int = 255
    key_type: int = 2

    def __post_init__(self) -> None:
        if not _is_digits(self.drn, (11, 13)):
            raise TokenError(f"the meter number (DRN) must be 11 or 13 digits, not {self.drn!r}")
        if luhn_check_digit(self.drn[:-1]) != int(self.drn[-1]):
            raise TokenError(
                f"meter number {self.drn} fails its check digit: re-read it from the meter"
            )
        expected_iin = LEGACY_IIN if len(self.drn) == 11 else SHORT_IIN
        if not _is_digits(self.iin, (6, 4)) or len(self.iin) != len(expected_iin):
            raise TokenError(
                f"a {len(self.drn)}-digit meter number goes with a {len(expected_iin)}-digit "
                f"issuer number such as {expected_iin}, not {self.iin!r}"
            )
        _check_int("the supply group code", self.sgc, 0, 999_999)
        _check_int("the tariff index", self.ti, 0, 99)
        _check_int("the key revision number", self.krn, 1, 9)
        _check_int("the key expiry number", self.ken, 0, 255)
        _check_int("the key type", self.key_type, 0, 3)
