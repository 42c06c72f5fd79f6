"""Generated PUKs and initial PINs always meet the dongle's policy."""

from __future__ import annotations

from dongle.staff.codes import new_pin, new_puk
from protocol.pin import check_pin, check_puk


def test_generated_puks_meet_the_policy_and_differ() -> None:
    puks = [new_puk() for _ in range(200)]
    for puk in puks:
        check_puk(puk)
    assert len(set(puks)) > 190


def test_generated_pins_meet_the_policy() -> None:
    for _ in range(200):
        check_pin(new_pin())
