"""Mapping of dongle status codes to typed exceptions."""

from __future__ import annotations

import pytest

from protocol import errors
from protocol.messages import Status

EXPECTED = {
    Status.BUSY: errors.DongleBusy,
    Status.WRONG_STATE: errors.DongleWrongState,
    Status.PIN_INVALID: errors.DonglePinInvalid,
    Status.PIN_BLOCKED: errors.DonglePinBlocked,
    Status.PIN_AUTH_INVALID: errors.DonglePinAuthInvalid,
    Status.PIN_NOT_SET: errors.DongleWrongState,
    Status.PIN_POLICY: errors.DonglePinPolicy,
    Status.PIN_TOKEN_EXPIRED: errors.DonglePinTokenExpired,
    Status.PUK_INVALID: errors.DonglePukInvalid,
    Status.WIPED: errors.DongleWiped,
    Status.CONFLICT: errors.DongleConflict,
    Status.CANCELLED: errors.DongleCancelled,
}


@pytest.mark.parametrize("status", list(Status)[1:], ids=lambda s: s.name)
def test_every_error_status_maps_to_its_exception_type(status: Status) -> None:
    exc = errors.dongle_error(status, {"message": "m"})
    assert type(exc) is EXPECTED.get(status, errors.DongleError)
    assert exc.status == status


def test_unknown_status_maps_to_the_base_dongle_error() -> None:
    exc = errors.dongle_error(0x6E)
    assert type(exc) is errors.DongleError and exc.body == {}


def test_message_carries_the_dongle_text_and_the_advice() -> None:
    exc = errors.dongle_error(Status.PIN_BLOCKED, {"message": "no tries left"})
    assert str(exc) == f"no tries left ({errors.DonglePinBlocked.advice})"


def test_message_without_text_names_the_error() -> None:
    assert str(errors.dongle_error(Status.CANCELLED)) == "DongleCancelled"


def test_pin_invalid_exposes_the_retries_left() -> None:
    exc = errors.dongle_error(Status.PIN_INVALID, {"message": "wrong PIN", "retries": 2})
    assert isinstance(exc, errors.DonglePinInvalid) and exc.retries == 2


def test_puk_invalid_is_a_pin_invalid_with_retries() -> None:
    exc = errors.dongle_error(Status.PUK_INVALID, {"retries": 9})
    assert isinstance(exc, errors.DonglePinInvalid) and exc.retries == 9


@pytest.mark.parametrize("retries", ["2", None, 2.0])
def test_retries_of_the_wrong_type_read_as_zero(retries: object) -> None:
    assert errors.dongle_error(Status.PIN_INVALID, {"retries": retries}).retries == 0


def test_every_protocol_error_is_a_protocol_error() -> None:
    for exc_type in (
        errors.FrameCrcError,
        errors.MessageError,
        errors.PayloadError,
        errors.PinPolicyError,
        errors.DongleWiped,
    ):
        assert issubclass(exc_type, errors.ProtocolError)
