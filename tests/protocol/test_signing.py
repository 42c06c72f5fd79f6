"""Signed layouts: field validation, exact layout, and signature verification."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from protocol import signing
from protocol.errors import PayloadError
from protocol.messages import canonical_cbor

KEY = ec.derive_private_key(0x5A3B1C0D9E8F7A6B5C4D3E2F1A0B9C8D, ec.SECP256R1())
OTHER_KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())


def payment(**changes: object) -> signing.PaymentAuthorization:
    fields = {
        "alg": signing.Algorithm.ES256,
        "gateway_id": "gw",
        "dongle_id": "TVP0000A1B2C3",
        "key_rev": 1,
        "counter": 7,
        "challenge": bytes(16),
        "payment_id": "p-1",
        "biller": "Water",
        "account": "3100123456789",
        "bill_ref": "2024-05",
        "amount_fen": 100,
        "currency": "CNY",
        "timestamp": 1717171717,
        "display_hash": bytes(range(32)),
    }
    return signing.PaymentAuthorization(**{**fields, **changes})


def test_signed_bytes_start_with_tag_zero_and_layout_version() -> None:
    data = payment().signed_bytes()
    assert data.startswith(b"TVPAY/PAYMENT\x00\x02")


def test_signed_bytes_end_with_the_fields_as_a_canonical_array_in_spec_order() -> None:
    p = payment()
    array = [
        -7,
        "gw",
        "TVP0000A1B2C3",
        1,
        7,
        bytes(16),
        "p-1",
        "Water",
        "3100123456789",
        "2024-05",
        100,
        "CNY",
        1717171717,
        bytes(range(32)),
    ]
    assert p.signed_bytes() == b"TVPAY/PAYMENT\x00\x02" + canonical_cbor(array)


def test_layouts_use_distinct_tags() -> None:
    tags = {signing.PAYMENT_TAG, signing.SESSION_TAG, signing.ATTEST_TAG}
    assert len(tags) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"amount_fen": 0},
        {"amount_fen": -1},
        {"amount_fen": signing.MAX_AMOUNT_FEN + 1},
        {"amount_fen": 1.5},
        {"amount_fen": True},
        {"currency": "CN"},
        {"currency": "cny"},
        {"currency": 156},
        {"challenge": bytes(15)},
        {"challenge": bytes(65)},
        {"challenge": "0" * 16},
        {"biller": ""},
        {"biller": "x" * 65},
        {"biller": "a\x00b"},
        {"account": 3100123456789},
        {"key_rev": 2**32},
        {"counter": -1},
        {"timestamp": -1},
        {"timestamp": "1717171717"},
    ],
    ids=repr,
)
def test_invalid_payment_field_is_a_payload_error(change: dict[str, object]) -> None:
    with pytest.raises(PayloadError):
        payment(**change)


def test_largest_amount_is_accepted() -> None:
    assert payment(amount_fen=signing.MAX_AMOUNT_FEN).amount_fen == signing.MAX_AMOUNT_FEN


def test_from_dict_reports_missing_fields_by_name() -> None:
    data = payment().to_dict()
    del data["biller"], data["currency"]
    with pytest.raises(PayloadError, match="biller, currency"):
        signing.PaymentAuthorization.from_dict(data)


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(PayloadError, match="tip"):
        signing.PaymentAuthorization.from_dict({**payment().to_dict(), "tip": 1})


def test_from_dict_rejects_an_unknown_algorithm() -> None:
    with pytest.raises(PayloadError, match="algorithm"):
        signing.PaymentAuthorization.from_dict({**payment().to_dict(), "alg": -8})


def test_session_rejects_a_short_challenge() -> None:
    with pytest.raises(PayloadError):
        signing.SessionChallenge(signing.Algorithm.ES256, "gw", "TVP1", 1, bytes(15), 0)


def test_attestation_accepts_an_empty_public_key() -> None:
    att = signing.ProvisioningAttestation(signing.Algorithm.ES256, "TVP1", 0, b"", bytes(16))
    assert att.signed_bytes().startswith(b"TVPAY/ATTEST\x00\x01")


def test_attestation_rejects_a_public_key_of_another_size() -> None:
    with pytest.raises(PayloadError):
        signing.ProvisioningAttestation(signing.Algorithm.ES256, "TVP1", 0, bytes(64), bytes(16))


def test_signature_is_64_raw_bytes_that_verify() -> None:
    data = payment().signed_bytes()
    signature = signing.sign(KEY, data)
    assert len(signature) == 64
    assert signing.verify(KEY.public_key(), data, signature)


def test_verify_rejects_tampered_bytes() -> None:
    data = payment().signed_bytes()
    signature = signing.sign(KEY, data)
    assert not signing.verify(KEY.public_key(), payment(amount_fen=101).signed_bytes(), signature)


def test_verify_rejects_a_tampered_signature() -> None:
    data = payment().signed_bytes()
    signature = bytearray(signing.sign(KEY, data))
    signature[40] ^= 0x01
    assert not signing.verify(KEY.public_key(), data, bytes(signature))


def test_verify_rejects_the_wrong_key() -> None:
    data = payment().signed_bytes()
    assert not signing.verify(OTHER_KEY.public_key(), data, signing.sign(KEY, data))


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65), bytes(64), "00" * 64])
def test_verify_rejects_malformed_signatures(signature: object) -> None:
    assert not signing.verify(KEY.public_key(), b"x", signature)  # type: ignore[arg-type]


def test_public_key_round_trips_through_sec1() -> None:
    encoded = signing.public_key_bytes(KEY.public_key())
    assert signing.public_key_bytes(signing.load_public_key(encoded)) == encoded


@pytest.mark.parametrize("data", [bytes(65), b"\x04" + bytes(64), bytes(33), "04" * 65])
def test_load_public_key_rejects_what_is_not_a_p256_point(data: object) -> None:
    with pytest.raises(PayloadError):
        signing.load_public_key(data)  # type: ignore[arg-type]
