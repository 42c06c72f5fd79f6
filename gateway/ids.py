"""Random identifiers and bearer tokens; tokens are stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

DEVICE_TOKEN_PREFIX = "tvpd_"
STAFF_TOKEN_PREFIX = "tvps_"


def new_id(prefix: str) -> str:
    """A random 128-bit identifier such as ``pay_3f2a…`` (prefix + 32 hex digits)."""
    return f"{prefix}_{secrets.token_hex(16)}"


def new_token(prefix: str) -> str:
    """A bearer token with 256 bits of randomness."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a token: enough to recognise it, useless to steal."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_challenge() -> bytes:
    """A 32-byte single-use challenge or nonce."""
    return secrets.token_bytes(32)
