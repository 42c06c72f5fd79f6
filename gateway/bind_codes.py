"""Bind codes: the 6-digit query code (查询密码) a utility prints on each bill so a household can
bind the account without typing the holder's name on a remote.

Only a salted scrypt hash is stored. The stored text names its parameters
(``scrypt$n$r$p$salt$hash``), so the cost can be raised later without invalidating old codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import random
import re

BIND_CODE = re.compile(r"[0-9]{6}")
# ~30 ms and 16 MiB per hash: a stolen database costs hours of CPU per account to invert, and a
# bind (a rare, rate-limited request) pays it once.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 2**20


def is_bind_code(value: object) -> bool:
    """True for exactly six ASCII digits."""
    return isinstance(value, str) and BIND_CODE.fullmatch(value) is not None


def _scrypt(code: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(code.encode("ascii"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def hash_bind_code(code: str) -> str:
    """The stored form of ``code`` with a fresh random salt."""
    if not is_bind_code(code):
        raise ValueError("a bind code is exactly 6 digits")
    salt = os.urandom(16)
    digest = _scrypt(code, salt, _N, _R, _P)
    encode = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_bind_code(code: str, stored: str) -> bool:
    """True when ``code`` is the code ``stored`` was made from (constant-time compare)."""
    if not is_bind_code(code):
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = _scrypt(code, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def demo_bind_code(rng: random.Random) -> str:
    """A code for demo data (real ones come from the utility's bills file)."""
    return f"{rng.randrange(10**6):06d}"
