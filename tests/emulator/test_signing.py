"""Payment signatures: what is signed, the counter, idempotence (docs/protocol.md §4.3, §4.4, §5.1)."""

from __future__ import annotations

import pytest

from dongle.usblink import DongleLink
from protocol.errors import DongleConflict, DongleError, DonglePinAuthInvalid
from protocol.messages import Command, Status
from protocol.signing import Algorithm, PaymentAuthorization, load_public_key, verify
from tests.fixtures.dongles import (
    Provisioned,
    open_link,
    payment_fields,
    pin_token,
    provision,
    sign_payment,
)


def test_signature_verifies_over_the_canonical_payment(
    link: DongleLink, provisioned: Provisioned
) -> None:
    fields = payment_fields()
    result = sign_payment(link, pin_token(link), fields)
    payload = PaymentAuthorization(
        alg=Algorithm.ES256,
        dongle_id=link.serial,
        key_rev=provisioned.key_rev,
        counter=result["counter"],
        **fields,
    )
    assert verify(
        load_public_key(provisioned.public_key), payload.signed_bytes(), result["signature"]
    )
    assert (result["dongle_id"], result["replayed"]) == (link.serial, False)


def test_counter_increases_by_one_per_payment(link: DongleLink, provisioned: Provisioned) -> None:
    token = pin_token(link)
    counters = [sign_payment(link, token, payment_fields())["counter"] for _ in range(5)]
    assert counters == [1, 2, 3, 4, 5]


def test_same_payment_id_replays_the_same_signature(
    link: DongleLink, provisioned: Provisioned
) -> None:
    token = pin_token(link)
    fields = payment_fields()
    first = sign_payment(link, token, fields)
    again = sign_payment(link, token, fields)
    assert (again["counter"], again["signature"], again["replayed"]) == (
        first["counter"],
        first["signature"],
        True,
    )
    assert link.call(Command.GET_INFO)["counter"] == 1


def test_same_payment_id_with_other_fields_is_a_conflict(
    link: DongleLink, provisioned: Provisioned
) -> None:
    token = pin_token(link)
    fields = payment_fields()
    sign_payment(link, token, fields)
    with pytest.raises(DongleConflict):
        sign_payment(link, token, {**fields, "amount_fen": 1})


def test_cache_forgets_after_32_payments(link: DongleLink, provisioned: Provisioned) -> None:
    token = pin_token(link)
    first = payment_fields()
    sign_payment(link, token, first)
    for _ in range(32):
        sign_payment(link, token, payment_fields())
    assert sign_payment(link, token, first)["replayed"] is False


def test_replay_survives_a_power_cycle(
    link: DongleLink, provisioned: Provisioned, bus, bus_and_backend
) -> None:  # type: ignore[no-untyped-def]
    fields = payment_fields()
    first = sign_payment(link, pin_token(link), fields)
    bus.unplug(link.serial)
    bus.plug(link.serial)
    with open_link(bus_and_backend[1]) as again:
        replay = sign_payment(again, pin_token(again), fields)
    assert (replay["signature"], replay["replayed"]) == (first["signature"], True)


def test_counter_is_kept_across_a_wipe(link: DongleLink, provisioned: Provisioned) -> None:
    sign_payment(link, pin_token(link), payment_fields())
    link.call(Command.WIPE, {"confirm": "WIPE"})
    provision(link)
    assert sign_payment(link, pin_token(link), payment_fields())["counter"] == 2


def test_wrong_pin_auth_is_refused(link: DongleLink, provisioned: Provisioned) -> None:
    pin_token(link)
    with pytest.raises(DonglePinAuthInvalid):
        link.call(Command.SIGN_PAYMENT, {"fields": payment_fields(), "pin_auth": bytes(16)})


def test_sign_without_a_token_is_refused(link: DongleLink, provisioned: Provisioned) -> None:
    with pytest.raises(DonglePinAuthInvalid):
        link.call(Command.SIGN_PAYMENT, {"fields": payment_fields(), "pin_auth": bytes(16)})


@pytest.mark.parametrize(
    "override", [{"amount_fen": 0}, {"currency": "yuan"}, {"challenge": b"short"}, {"biller": ""}]
)
def test_invalid_fields_are_refused_without_counting(
    link: DongleLink, provisioned: Provisioned, override: dict
) -> None:
    with pytest.raises(DongleError) as caught:
        sign_payment(link, pin_token(link), payment_fields(**override))
    assert caught.value.status == Status.INVALID_PARAMETER
    assert link.call(Command.GET_INFO)["counter"] == 0


def test_missing_fields_are_refused(link: DongleLink, provisioned: Provisioned) -> None:
    fields = payment_fields()
    del fields["bill_ref"]
    with pytest.raises(DongleError) as caught:
        sign_payment(link, pin_token(link), fields)
    assert caught.value.status == Status.INVALID_PARAMETER
