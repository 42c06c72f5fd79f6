"""PIN protocol, modelled on CTAP2 ClientPIN protocol 2 (docs/protocol.md §6).

The host (the TV app or the staff tool) and the dongle agree a key by ECDH on P-256 between a
fresh host key and the dongle's key-agreement key, derive an AES-256-GCM key with HKDF-SHA-256,
and exchange only encrypted values: the PIN's hash, new PINs and PUKs, and the PIN token. The
daemon and the USB wire therefore never carry a PIN in clear. The PIN token then authorizes
signing through a short HMAC (``pin_auth``).

The dongle's key-agreement key reaches the host through the daemon, which the host does not trust:
the dongle signs it with its payment key together with the host's fresh nonce
(``KeyAgreementBinding``), and the host checks that signature against the payment key it learnt
elsewhere (``DongleKey``) before it encrypts anything derived from a PIN. A daemon that answers
with its own key would otherwise receive the PIN hash and try all 10^6 PINs against it offline.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.errors import PayloadError, PinPolicyError, PinProtocolError
from protocol.messages import canonical_cbor
from protocol.signing import (
    Algorithm,
    KeyAgreementBinding,
    load_public_key,
    public_key_bytes,
    verify,
)

PIN_LENGTH = 6
PUK_LENGTH = 8
PIN_RETRIES = 3
PUK_RETRIES = 10
PIN_TOKEN_SIZE = 32
PIN_AUTH_SIZE = 16
NONCE_SIZE = 12
HKDF_INFO = b"TVPAY/PIN/v1 AES-256-GCM"
PIN_AUTH_TAG = b"TVPAY/PINAUTH\x00"
KEY_AGREEMENT_NONCE_SIZE = 32

# Associated data binds each ciphertext to its one purpose, so a PUK cannot be replayed as a PIN.
AAD_PIN_HASH = b"pin_hash"
AAD_NEW_PIN = b"new_pin"
AAD_PUK = b"puk"
AAD_PIN_TOKEN = b"pin_token"


class KeyAgreementUnverified(PinProtocolError):
    """The key-agreement key is not signed by the dongle's payment key for this nonce: whoever
    relayed it may have put its own key in its place. Nothing derived from a PIN may be sent."""

    def __init__(self, message: str, dongle_id: str, key_rev: int) -> None:
        super().__init__(message)
        self.dongle_id = dongle_id
        self.key_rev = key_rev


@dataclass(frozen=True, slots=True)
class DongleKey:
    """A dongle's payment key as the host learnt it outside the daemon (from the gateway's
    registry, GENERATE_KEY or a verified attestation)."""

    dongle_id: str
    key_rev: int
    public_key: bytes  # SEC1 uncompressed P-256 point


def verify_key_agreement(
    expected: DongleKey, key_agreement: bytes, nonce: bytes, signature: bytes | None
) -> None:
    """Raise KeyAgreementUnverified unless ``signature`` is ``expected``'s payment key signing
    ``key_agreement`` for ``nonce`` (docs/protocol.md §6.1). An unsigned answer never passes."""
    try:
        binding = KeyAgreementBinding(
            Algorithm.ES256, expected.dongle_id, expected.key_rev, key_agreement, nonce
        )
        valid = signature is not None and verify(
            load_public_key(expected.public_key), binding.signed_bytes(), signature
        )
    except PayloadError as exc:
        raise KeyAgreementUnverified(
            f"the key agreement of dongle {expected.dongle_id} is malformed: {exc}",
            expected.dongle_id,
            expected.key_rev,
        ) from None
    if not valid:
        raise KeyAgreementUnverified(
            f"the key agreement is not signed by dongle {expected.dongle_id}'s payment key "
            f"(key {expected.key_rev}) for this request",
            expected.dongle_id,
            expected.key_rev,
        )


def check_pin(pin: str) -> None:
    """Raise PinPolicyError unless ``pin`` is 6 digits and not trivially guessable."""
    _check_digits(pin, PIN_LENGTH, "PIN")


def check_puk(puk: str) -> None:
    """Raise PinPolicyError unless ``puk`` is 8 digits and not trivially guessable."""
    _check_digits(puk, PUK_LENGTH, "PUK")


def _check_digits(value: str, length: int, name: str) -> None:
    if (
        not isinstance(value, str)
        or len(value) != length
        or not value.isascii()
        or not value.isdigit()
    ):
        raise PinPolicyError(f"the {name} must be exactly {length} digits")
    if len(set(value)) == 1:
        raise PinPolicyError(f"the {name} must not be one digit repeated")
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(value)}
    if steps in ({1}, {9}):
        raise PinPolicyError(f"the {name} must not be a run of consecutive digits")


def pin_hash(pin: str) -> bytes:
    """LEFT(SHA-256(pin), 16): what is encrypted and compared instead of the PIN itself."""
    return hashlib.sha256(pin.encode("ascii")).digest()[:16]


def derive_key(private_key: ec.EllipticCurvePrivateKey, peer_public: bytes) -> bytes:
    """The shared AES-256-GCM key of the two sides (ECDH x-coordinate through HKDF-SHA-256)."""
    try:
        peer = load_public_key(peer_public)
    except PayloadError as exc:
        raise PinProtocolError(f"key agreement failed: {exc}") from None
    z = private_key.exchange(ec.ECDH(), peer)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\x00" * 32, info=HKDF_INFO).derive(z)


def encrypt(key: bytes, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
    """nonce (12) | AES-256-GCM ciphertext and tag. ``nonce`` is fixed only by test vectors."""
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if not isinstance(blob, bytes) or len(blob) < NONCE_SIZE + 16:
        raise PinProtocolError("encrypted PIN value is too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad)
    except InvalidTag:
        raise PinProtocolError("encrypted PIN value failed authentication") from None


def pin_auth(pin_token: bytes, message: bytes) -> bytes:
    """The 16-byte proof that the holder of a PIN token asks for ``message``."""
    return hmac.new(pin_token, PIN_AUTH_TAG + message, hashlib.sha256).digest()[:PIN_AUTH_SIZE]


def sign_request_message(fields: dict) -> bytes:
    """The bytes a SIGN_PAYMENT / SIGN_SESSION ``pin_auth`` covers: canonical CBOR of the fields."""
    return canonical_cbor(fields)


def verify_pin_auth(pin_token: bytes, message: bytes, tag: bytes) -> bool:
    return isinstance(tag, bytes) and hmac.compare_digest(pin_auth(pin_token, message), tag)


@dataclass(frozen=True, slots=True)
class HostPinSession:
    """One key agreement from the host side: holds the host key and the derived shared key."""

    public_key: bytes  # host key, SEC1 uncompressed; sent as ``key_agreement``
    shared_key: bytes

    @classmethod
    def start(
        cls, dongle_key_agreement: bytes, private_key: ec.EllipticCurvePrivateKey | None = None
    ) -> HostPinSession:
        private_key = private_key or ec.generate_private_key(ec.SECP256R1())
        return cls(
            public_key_bytes(private_key.public_key()),
            derive_key(private_key, dongle_key_agreement),
        )

    def pin_hash_enc(self, pin: str) -> bytes:
        return encrypt(self.shared_key, pin_hash(pin), AAD_PIN_HASH)

    def new_pin_enc(self, pin: str) -> bytes:
        check_pin(pin)
        return encrypt(self.shared_key, pin.encode("ascii"), AAD_NEW_PIN)

    def puk_enc(self, puk: str) -> bytes:
        return encrypt(self.shared_key, puk.encode("ascii"), AAD_PUK)

    def pin_token(self, pin_token_enc: bytes) -> bytes:
        token = decrypt(self.shared_key, pin_token_enc, AAD_PIN_TOKEN)
        if len(token) != PIN_TOKEN_SIZE:
            raise PinProtocolError("PIN token has the wrong size")
        return token
