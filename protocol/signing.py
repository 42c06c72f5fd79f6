"""What the dongle signs: canonical byte layouts with a domain-separation tag and a version.

    signed bytes = TAG (ASCII) | 0x00 | layout version (1 byte) | canonical CBOR array of fields

Each layout carries its own version: a layout gains a field only together with a new version, so
a signature over the old field list can never be read as one over the new (the payment layout is
at version 2 since it signs the hash of the confirmation text; session and attestation are at 1).

The first array element is always the COSE algorithm id (-7 = ES256: ECDSA P-256 with SHA-256),
so an SM2 dongle can one day sign the same layouts under its own id. Signatures travel as raw
r||s, 32 bytes each, which is what a secure element produces and what firmware can check without
an ASN.1 parser. See docs/protocol.md §5 and tests/vectors/signed_payloads.json.
"""

from __future__ import annotations

import enum
import re
from dataclasses import astuple, dataclass, fields
from typing import Any, ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from protocol.errors import PayloadError
from protocol.messages import canonical_cbor


class Algorithm(enum.IntEnum):
    ES256 = -7  # COSE: ECDSA w/ SHA-256 on P-256
    # SM2 would take its own id here once a dongle supports it.


PAYMENT_TAG = b"TVPAY/PAYMENT"
SESSION_TAG = b"TVPAY/SESSION"
ATTEST_TAG = b"TVPAY/ATTEST"
KEYAGREE_TAG = b"TVPAY/KEYAGREE"
MAX_TEXT = 64
MAX_AMOUNT_FEN = 10**12  # ten billion yuan: far above any household bill
DISPLAY_HASH_SIZE = 32  # SHA-256
_CURRENCY = re.compile(r"[A-Z]{3}")


def _text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise PayloadError(f"{name} must be a non-empty text of at most {MAX_TEXT} characters")
    if any(ord(ch) < 0x20 for ch in value):
        raise PayloadError(f"{name} must not contain control characters")


def _uint(name: str, value: Any, maximum: int = 2**63 - 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise PayloadError(f"{name} must be an integer in 0..{maximum}")


def _blob(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, bytes) or not lo <= len(value) <= hi:
        raise PayloadError(f"{name} must be {lo}..{hi} bytes")


class _Layout:
    TAG: ClassVar[bytes]
    VERSION: ClassVar[int] = 1
    alg: Algorithm

    def signed_bytes(self) -> bytes:
        values = [int(v) if isinstance(v, Algorithm) else v for v in astuple(self)]  # type: ignore[call-overload]
        return self.TAG + b"\x00" + bytes([self.VERSION]) + canonical_cbor(values)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (int(v) if isinstance(v, Algorithm) else v)
            for f, v in zip(fields(self), astuple(self), strict=True)
        }  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        missing = [n for n in names if n not in data]
        if missing:
            raise PayloadError(f"missing fields: {', '.join(missing)}")
        extra = sorted(set(data) - set(names))
        if extra:
            raise PayloadError(f"unknown fields: {', '.join(extra)}")
        try:
            alg = Algorithm(data["alg"])
        except (ValueError, TypeError):
            raise PayloadError(f"unsupported algorithm {data['alg']!r}") from None
        return cls(**{**data, "alg": alg})


@dataclass(frozen=True, slots=True)
class PaymentAuthorization(_Layout):
    """The fields a dongle signs to authorize one payment (docs/protocol.md §5.1)."""

    TAG: ClassVar[bytes] = PAYMENT_TAG
    VERSION: ClassVar[int] = 2
    alg: Algorithm
    gateway_id: str
    dongle_id: str
    key_rev: int
    counter: int
    challenge: bytes
    payment_id: str
    biller: str
    account: str
    bill_ref: str
    amount_fen: int
    currency: str
    timestamp: int
    # SHA-256 of the confirmation text the household was shown (UTF-8, NFC, lines joined by
    # "\n"): the signature covers what was on screen, not only the fields behind it.
    display_hash: bytes

    def __post_init__(self) -> None:
        for name in ("gateway_id", "dongle_id", "payment_id", "biller", "account", "bill_ref"):
            _text(name, getattr(self, name))
        _uint("key_rev", self.key_rev, 0xFFFFFFFF)
        _uint("counter", self.counter, 0xFFFFFFFF)
        _blob("challenge", self.challenge, 16, 64)
        _uint("amount_fen", self.amount_fen, MAX_AMOUNT_FEN)
        if self.amount_fen == 0:
            raise PayloadError("amount_fen must be positive")
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise PayloadError("currency must be an ISO 4217 code such as CNY")
        _uint("timestamp", self.timestamp)
        _blob("display_hash", self.display_hash, DISPLAY_HASH_SIZE, DISPLAY_HASH_SIZE)


# The fields the host sends with SIGN_PAYMENT; the dongle adds dongle_id, key_rev and counter.
# The gateway supplies all but display_hash, which the host computes from the text it showed.
PAYMENT_REQUEST_FIELDS = (
    "gateway_id",
    "challenge",
    "payment_id",
    "biller",
    "account",
    "bill_ref",
    "amount_fen",
    "currency",
    "timestamp",
    "display_hash",
)


@dataclass(frozen=True, slots=True)
class SessionChallenge(_Layout):
    """What a dongle signs to open a device session with the gateway (§5.2)."""

    TAG: ClassVar[bytes] = SESSION_TAG
    alg: Algorithm
    gateway_id: str
    dongle_id: str
    key_rev: int
    challenge: bytes
    timestamp: int

    def __post_init__(self) -> None:
        _text("gateway_id", self.gateway_id)
        _text("dongle_id", self.dongle_id)
        _uint("key_rev", self.key_rev, 0xFFFFFFFF)
        _blob("challenge", self.challenge, 16, 64)
        _uint("timestamp", self.timestamp)


@dataclass(frozen=True, slots=True)
class ProvisioningAttestation(_Layout):
    """What the factory attestation key signs during provisioning (§5.3).

    ``public_key`` is the payment key (SEC1 uncompressed, 65 bytes), or empty before one exists.
    """

    TAG: ClassVar[bytes] = ATTEST_TAG
    alg: Algorithm
    dongle_id: str
    key_rev: int
    public_key: bytes
    nonce: bytes

    def __post_init__(self) -> None:
        _text("dongle_id", self.dongle_id)
        _uint("key_rev", self.key_rev, 0xFFFFFFFF)
        if not isinstance(self.public_key, bytes) or len(self.public_key) not in (0, 65):
            raise PayloadError(
                "public_key must be empty or a 65-byte SEC1 uncompressed P-256 point"
            )
        _blob("nonce", self.nonce, 16, 64)


@dataclass(frozen=True, slots=True)
class KeyAgreementBinding(_Layout):
    """What the payment key signs over a key-agreement key (§6.1): the host learns that the key
    it encrypts the PIN for is this dongle's, fresh for its own nonce, whoever relayed it.

    ``key_agreement`` is the dongle's ECDH key (SEC1 uncompressed, 65 bytes).
    """

    TAG: ClassVar[bytes] = KEYAGREE_TAG
    alg: Algorithm
    dongle_id: str
    key_rev: int
    key_agreement: bytes
    nonce: bytes

    def __post_init__(self) -> None:
        _text("dongle_id", self.dongle_id)
        _uint("key_rev", self.key_rev, 0xFFFFFFFF)
        _blob("key_agreement", self.key_agreement, 65, 65)
        _blob("nonce", self.nonce, 16, 64)


def public_key_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """SEC1 uncompressed encoding (65 bytes) of a P-256 public key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def load_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """Parse a SEC1 P-256 point; PayloadError when it is not one."""
    if not isinstance(data, bytes) or len(data) != 65:
        raise PayloadError("public key must be a 65-byte SEC1 uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise PayloadError("public key is not a point on P-256") from None


def sign(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """ES256 signature as raw r||s (64 bytes)."""
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(public_key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` (raw r||s) is a valid ES256 signature of ``message``."""
    if not isinstance(signature, bytes) or len(signature) != 64:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
