"""Fresh PUKs and initial PINs, drawn from the OS's CSPRNG until they meet the policy."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from protocol.errors import PinPolicyError
from protocol.pin import PIN_LENGTH, PUK_LENGTH, check_pin, check_puk


def _draw(length: int, check: Callable[[str], None]) -> str:
    while True:
        value = "".join(str(secrets.randbelow(10)) for _ in range(length))
        try:
            check(value)
        except PinPolicyError:
            continue  # a repeated digit or a run: draw again
        return value


def new_puk() -> str:
    """An 8-digit PUK meeting protocol.pin.check_puk: the household's unblock code."""
    return _draw(PUK_LENGTH, check_puk)


def new_pin() -> str:
    """A 6-digit initial PIN meeting protocol.pin.check_pin (batch rows without a PIN)."""
    return _draw(PIN_LENGTH, check_pin)
