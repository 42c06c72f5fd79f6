"""PIN and PUK: retries, blocking, unblocking, wiping, token lifetime (docs/protocol.md §6)."""

from __future__ import annotations

import pytest

from dongle.usblink import DongleLink
from protocol.errors import (
    DonglePinAuthInvalid,
    DonglePinBlocked,
    DonglePinInvalid,
    DonglePinTokenExpired,
    DonglePukInvalid,
    DongleWiped,
)
from protocol.messages import Command
from protocol.pin import AAD_PIN_HASH, encrypt, pin_hash
from tests.emulator.conftest import FakeClock
from tests.fixtures.dongles import (
    TEST_PIN,
    Provisioned,
    open_link,
    payment_fields,
    pin_session,
    pin_token,
    sign_payment,
)

WRONG_PIN = "975318"
WRONG_PUK = "97531864"


def _unblock(link: DongleLink, puk: str, new_pin: str) -> None:
    session = pin_session(link)
    link.call(
        Command.UNBLOCK_PIN,
        {
            "key_agreement": session.public_key,
            "puk_enc": session.puk_enc(puk),
            "new_pin_enc": session.new_pin_enc(new_pin),
        },
    )


def _block(link: DongleLink) -> None:
    for _ in range(2):
        with pytest.raises(DonglePinInvalid):
            pin_token(link, WRONG_PIN)
    with pytest.raises(DonglePinBlocked):
        pin_token(link, WRONG_PIN)


def test_right_pin_gives_a_token(link: DongleLink, provisioned: Provisioned) -> None:
    assert len(pin_token(link)) == 32


def test_wrong_pin_reports_tries_left(link: DongleLink, provisioned: Provisioned) -> None:
    with pytest.raises(DonglePinInvalid) as caught:
        pin_token(link, WRONG_PIN)
    assert caught.value.retries == 2
    assert link.call(Command.GET_INFO)["pin_retries"] == 2


def test_right_pin_resets_the_tries(link: DongleLink, provisioned: Provisioned) -> None:
    with pytest.raises(DonglePinInvalid):
        pin_token(link, WRONG_PIN)
    pin_token(link)
    assert link.call(Command.GET_INFO)["pin_retries"] == 3


def test_third_wrong_pin_blocks(link: DongleLink, provisioned: Provisioned) -> None:
    _block(link)
    assert link.call(Command.GET_INFO)["state"] == "pin_blocked"
    with pytest.raises(DonglePinBlocked):
        pin_token(link)  # even the right PIN


def test_wrong_pin_regenerates_the_key_agreement_key(
    link: DongleLink, provisioned: Provisioned
) -> None:
    before = link.call(Command.GET_KEY_AGREEMENT)["key"]
    with pytest.raises(DonglePinInvalid):
        pin_token(link, WRONG_PIN)
    assert link.call(Command.GET_KEY_AGREEMENT)["key"] != before


def test_undecryptable_pin_does_not_cost_a_try(link: DongleLink, provisioned: Provisioned) -> None:
    session = pin_session(link)
    forged = encrypt(bytes(32), pin_hash(TEST_PIN), AAD_PIN_HASH)
    with pytest.raises(DonglePinAuthInvalid):
        link.call(
            Command.GET_PIN_TOKEN, {"key_agreement": session.public_key, "pin_hash_enc": forged}
        )
    assert link.call(Command.GET_INFO)["pin_retries"] == 3


def test_puk_unblocks_and_sets_a_new_pin(link: DongleLink, provisioned: Provisioned) -> None:
    _block(link)
    _unblock(link, provisioned.puk, "802468")
    assert link.call(Command.GET_INFO)["state"] == "locked"
    assert len(pin_token(link, "802468")) == 32


def test_wrong_puk_reports_tries_left(link: DongleLink, provisioned: Provisioned) -> None:
    _block(link)
    with pytest.raises(DonglePukInvalid) as caught:
        _unblock(link, WRONG_PUK, "802468")
    assert caught.value.retries == 9


def test_tenth_wrong_puk_wipes_the_dongle(link: DongleLink, provisioned: Provisioned) -> None:
    _block(link)
    for _ in range(9):
        with pytest.raises(DonglePukInvalid):
            _unblock(link, WRONG_PUK, "802468")
    with pytest.raises(DongleWiped):
        _unblock(link, WRONG_PUK, "802468")
    info = link.call(Command.GET_INFO)
    assert (info["state"], info["pin_set"], info["key_rev"]) == ("factory", False, 1)


def test_change_pin_needs_the_old_pin(link: DongleLink, provisioned: Provisioned) -> None:
    session = pin_session(link)
    link.call(
        Command.CHANGE_PIN,
        {
            "key_agreement": session.public_key,
            "pin_hash_enc": session.pin_hash_enc(TEST_PIN),
            "new_pin_enc": session.new_pin_enc("802468"),
        },
    )
    with pytest.raises(DonglePinInvalid):
        pin_token(link, TEST_PIN)
    assert len(pin_token(link, "802468")) == 32


def test_token_expires_after_120_seconds(
    link: DongleLink, provisioned: Provisioned, clock: FakeClock
) -> None:
    token = pin_token(link)
    clock.advance(121)
    with pytest.raises(DonglePinTokenExpired):
        sign_payment(link, token, payment_fields())


def test_token_is_still_valid_at_119_seconds(
    link: DongleLink, provisioned: Provisioned, clock: FakeClock
) -> None:
    token = pin_token(link)
    clock.advance(119)
    assert sign_payment(link, token, payment_fields())["counter"] == 1


def test_token_dies_with_an_unplug(
    link: DongleLink, provisioned: Provisioned, bus, bus_and_backend
) -> None:  # type: ignore[no-untyped-def]
    token = pin_token(link)
    bus.unplug(link.serial)
    bus.plug(link.serial)
    with open_link(bus_and_backend[1]) as again, pytest.raises(DonglePinAuthInvalid):
        sign_payment(again, token, payment_fields())
