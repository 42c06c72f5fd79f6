"""PIN policy and the PIN protocol's key agreement, encryption and pin_auth."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from protocol import pin
from protocol.errors import PinPolicyError, PinProtocolError
from protocol.signing import public_key_bytes

DONGLE_KEY = ec.derive_private_key(0x7D6C5B4A39281706F5E4D3C2B1A0, ec.SECP256R1())
DONGLE_PUBLIC = public_key_bytes(DONGLE_KEY.public_key())
KEY = bytes(range(32))


@pytest.mark.parametrize("good", ["482916", "102938", "135790", "000001"])
def test_acceptable_pins_pass(good: str) -> None:
    pin.check_pin(good)


@pytest.mark.parametrize(
    "bad",
    [
        "48291",
        "4829160",
        "48291a",
        "",
        "111111",
        "123456",
        "654321",
        "890123",
        "321098",
        "４８２９１６",
        "48 916",
    ],
)
def test_policy_breaking_pins_are_rejected(bad: str) -> None:
    with pytest.raises(PinPolicyError):
        pin.check_pin(bad)


def test_pin_must_be_text() -> None:
    with pytest.raises(PinPolicyError):
        pin.check_pin(482916)  # type: ignore[arg-type]


def test_acceptable_puk_passes() -> None:
    pin.check_puk("80261947")


@pytest.mark.parametrize("bad", ["482916", "802619470", "22222222", "12345678", "87654321"])
def test_policy_breaking_puks_are_rejected(bad: str) -> None:
    with pytest.raises(PinPolicyError):
        pin.check_puk(bad)


def test_policy_error_is_a_pin_protocol_error() -> None:
    assert issubclass(PinPolicyError, PinProtocolError)


def test_pin_hash_is_the_left_half_of_sha256() -> None:
    assert pin.pin_hash("482916") == hashlib.sha256(b"482916").digest()[:16]


def test_host_and_dongle_derive_the_same_key() -> None:
    session = pin.HostPinSession.start(DONGLE_PUBLIC)
    assert pin.derive_key(DONGLE_KEY, session.public_key) == session.shared_key


def test_fresh_host_sessions_use_fresh_keys() -> None:
    first = pin.HostPinSession.start(DONGLE_PUBLIC)
    second = pin.HostPinSession.start(DONGLE_PUBLIC)
    assert first.public_key != second.public_key and first.shared_key != second.shared_key


@pytest.mark.parametrize("peer", [bytes(65), b"", bytes(64)])
def test_key_agreement_with_a_bad_point_is_a_pin_protocol_error(peer: bytes) -> None:
    with pytest.raises(PinProtocolError):
        pin.derive_key(DONGLE_KEY, peer)


def test_encrypt_then_decrypt_gives_the_plaintext() -> None:
    assert pin.decrypt(KEY, pin.encrypt(KEY, b"482916", pin.AAD_NEW_PIN), pin.AAD_NEW_PIN) == (
        b"482916"
    )


def test_encryption_uses_a_fresh_nonce_each_time() -> None:
    assert pin.encrypt(KEY, b"x", pin.AAD_PUK) != pin.encrypt(KEY, b"x", pin.AAD_PUK)


def test_decrypt_with_another_purpose_is_rejected() -> None:
    blob = pin.encrypt(KEY, b"80261947", pin.AAD_PUK)
    with pytest.raises(PinProtocolError):
        pin.decrypt(KEY, blob, pin.AAD_NEW_PIN)


@pytest.mark.parametrize("index", [0, 11, 12, 20, -1])
def test_decrypt_of_a_tampered_value_is_rejected(index: int) -> None:
    blob = bytearray(pin.encrypt(KEY, b"482916", pin.AAD_NEW_PIN))
    blob[index] ^= 0x01
    with pytest.raises(PinProtocolError):
        pin.decrypt(KEY, bytes(blob), pin.AAD_NEW_PIN)


def test_decrypt_with_another_key_is_rejected() -> None:
    blob = pin.encrypt(KEY, b"482916", pin.AAD_NEW_PIN)
    with pytest.raises(PinProtocolError):
        pin.decrypt(bytes(32), blob, pin.AAD_NEW_PIN)


@pytest.mark.parametrize("blob", [b"", bytes(27), "00" * 40])
def test_decrypt_of_a_short_or_non_bytes_value_is_rejected(blob: object) -> None:
    with pytest.raises(PinProtocolError):
        pin.decrypt(KEY, blob, pin.AAD_PIN_HASH)  # type: ignore[arg-type]


def test_new_pin_enc_enforces_the_policy_before_encrypting() -> None:
    with pytest.raises(PinPolicyError):
        pin.HostPinSession.start(DONGLE_PUBLIC).new_pin_enc("123456")


def test_dongle_reads_the_pin_hash_the_host_sent() -> None:
    session = pin.HostPinSession.start(DONGLE_PUBLIC)
    key = pin.derive_key(DONGLE_KEY, session.public_key)
    assert pin.decrypt(key, session.pin_hash_enc("482916"), pin.AAD_PIN_HASH) == pin.pin_hash(
        "482916"
    )


def test_host_reads_the_pin_token_the_dongle_sent() -> None:
    session = pin.HostPinSession.start(DONGLE_PUBLIC)
    token = bytes(range(32))
    enc = pin.encrypt(pin.derive_key(DONGLE_KEY, session.public_key), token, pin.AAD_PIN_TOKEN)
    assert session.pin_token(enc) == token


def test_pin_token_of_the_wrong_size_is_rejected() -> None:
    session = pin.HostPinSession.start(DONGLE_PUBLIC)
    enc = pin.encrypt(session.shared_key, bytes(16), pin.AAD_PIN_TOKEN)
    with pytest.raises(PinProtocolError):
        session.pin_token(enc)


def test_pin_auth_verifies_for_the_same_fields() -> None:
    message = pin.sign_request_message({"amount_fen": 100, "currency": "CNY"})
    assert pin.verify_pin_auth(KEY, message, pin.pin_auth(KEY, message))


def test_pin_auth_does_not_verify_for_other_fields() -> None:
    tag = pin.pin_auth(KEY, pin.sign_request_message({"amount_fen": 100}))
    assert not pin.verify_pin_auth(KEY, pin.sign_request_message({"amount_fen": 101}), tag)


def test_pin_auth_does_not_verify_under_another_token() -> None:
    message = pin.sign_request_message({"amount_fen": 100})
    assert not pin.verify_pin_auth(bytes(32), message, pin.pin_auth(KEY, message))


@pytest.mark.parametrize("tag", [b"", bytes(16), "00" * 16])
def test_malformed_pin_auth_does_not_verify(tag: object) -> None:
    assert not pin.verify_pin_auth(KEY, b"m", tag)  # type: ignore[arg-type]
