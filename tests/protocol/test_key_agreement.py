"""The key-agreement binding (docs/protocol.md §6.1): the layout against its vector, and the
host's check, which accepts only the dongle's payment key signing this key for this nonce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.pin import DongleKey, KeyAgreementUnverified, verify_key_agreement
from protocol.signing import KeyAgreementBinding, public_key_bytes, sign
from tests.vectors import generate

VECTOR = json.loads(
    (Path(generate.__file__).parent / "pin_protocol.json").read_text(encoding="utf-8")
)["key_agreement_binding"]
FIELDS = generate.from_json(VECTOR["fields"])
EXPECTED = DongleKey(
    FIELDS["dongle_id"], FIELDS["key_rev"], bytes.fromhex(VECTOR["payment_public_key"])
)


def test_the_layout_gives_the_vector_bytes() -> None:
    data = KeyAgreementBinding.from_dict(FIELDS).signed_bytes()
    assert data.hex() == VECTOR["signed_bytes"]
    assert data.startswith(b"TVPAY/KEYAGREE\x00\x01")


def test_the_vector_signature_is_accepted() -> None:
    verify_key_agreement(
        EXPECTED, FIELDS["key_agreement"], FIELDS["nonce"], bytes.fromhex(VECTOR["signature"])
    )


def _other_key() -> bytes:
    return public_key_bytes(ec.generate_private_key(ec.SECP256R1()).public_key())


@pytest.mark.parametrize(
    ("expected", "key", "nonce", "signature"),
    [
        (EXPECTED, FIELDS["key_agreement"], FIELDS["nonce"], None),
        (EXPECTED, _other_key(), FIELDS["nonce"], bytes.fromhex(VECTOR["signature"])),
        (EXPECTED, FIELDS["key_agreement"], bytes(32), bytes.fromhex(VECTOR["signature"])),
        (
            DongleKey("TVP0000FFFFFF", EXPECTED.key_rev, EXPECTED.public_key),
            FIELDS["key_agreement"],
            FIELDS["nonce"],
            bytes.fromhex(VECTOR["signature"]),
        ),
        (
            DongleKey(EXPECTED.dongle_id, 2, EXPECTED.public_key),
            FIELDS["key_agreement"],
            FIELDS["nonce"],
            bytes.fromhex(VECTOR["signature"]),
        ),
        (
            DongleKey(EXPECTED.dongle_id, EXPECTED.key_rev, _other_key()),
            FIELDS["key_agreement"],
            FIELDS["nonce"],
            bytes.fromhex(VECTOR["signature"]),
        ),
        (EXPECTED, b"\x04" + bytes(64), FIELDS["nonce"], bytes.fromhex(VECTOR["signature"])),
        (EXPECTED, FIELDS["key_agreement"], bytes(8), bytes.fromhex(VECTOR["signature"])),
    ],
    ids=[
        "unsigned",
        "another key",
        "another nonce",
        "another dongle",
        "another key revision",
        "not the registered key",
        "not a point",
        "nonce too short",
    ],
)
def test_anything_else_is_refused_naming_the_dongle(
    expected: DongleKey, key: bytes, nonce: bytes, signature: bytes | None
) -> None:
    with pytest.raises(KeyAgreementUnverified, match=expected.dongle_id) as caught:
        verify_key_agreement(expected, key, nonce, signature)
    assert (caught.value.dongle_id, caught.value.key_rev) == (expected.dongle_id, expected.key_rev)


def test_a_signature_by_the_key_agreement_key_itself_is_refused() -> None:
    """A daemon can sign its own key with itself; only the registered payment key counts."""
    own = ec.generate_private_key(ec.SECP256R1())
    key = public_key_bytes(own.public_key())
    binding = KeyAgreementBinding(
        FIELDS["alg"], EXPECTED.dongle_id, EXPECTED.key_rev, key, FIELDS["nonce"]
    )
    with pytest.raises(KeyAgreementUnverified):
        verify_key_agreement(EXPECTED, key, FIELDS["nonce"], sign(own, binding.signed_bytes()))
