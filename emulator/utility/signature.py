"""Checks the ``TVPay-Signature: <key id>:<base64 r||s>`` header the gateway puts on each
notification: ES256 by the gateway's receipt key over the exact request body."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives.asymmetric import ec

from protocol.signing import public_key_bytes, verify

HEADER = "TVPay-Signature"


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The short key name the gateway publishes: SHA-256 over the SEC1 point, 16 hex digits."""
    return hashlib.sha256(public_key_bytes(public_key)).hexdigest()[:16]


class SignatureRejected(Exception):
    """The notification is unsigned, signed by another key, or its signature does not verify."""


def check_signature(public_key: ec.EllipticCurvePublicKey, header: str | None, body: bytes) -> None:
    if not header:
        raise SignatureRejected(f"the notification has no {HEADER} header; sign it")
    kid, sep, sig_b64 = header.partition(":")
    if not sep or kid != key_id(public_key):
        raise SignatureRejected(
            f"{HEADER} names key {kid[:32]!r}; this utility trusts {key_id(public_key)}"
        )
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected(f"{HEADER} is not base64") from None
    if not verify(public_key, body, signature):
        raise SignatureRejected(f"{HEADER} does not verify over this body")
