"""The token identifier (TID): minutes since the base date, 24 bits (IEC 62055-41).

The original base date 1993-01-01 ran out of 24-bit minutes on 2024-11-24 20:16 UTC; meters
were moved (by key-change tokens) to the base date 2014-01-01, whose last minute is 2045-11-24 20:15 UTC.
Every TID here counts from 2014-01-01 00:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from protocol.sts.errors import TokenError

BASE_DATE = datetime(2014, 1, 1, tzinfo=UTC)
_BASE_SECONDS = int(BASE_DATE.timestamp())
TID_BITS = 24
TID_MAX = (1 << TID_BITS) - 1


def tid_at(unix_seconds: int) -> int:
    """The TID of the minute holding ``unix_seconds`` (UTC); refuses times the 24 bits after
    the 2014 base date cannot name."""
    if isinstance(unix_seconds, bool) or not isinstance(unix_seconds, int):
        raise TokenError(f"the time must be integer Unix seconds, not {unix_seconds!r}")
    minutes = (unix_seconds - _BASE_SECONDS) // 60
    if not 0 <= minutes <= TID_MAX:
        raise TokenError(
            f"Unix time {unix_seconds} is outside the token identifier range "
            f"(2014-01-01 00:00 to 2045-11-24 20:15 UTC); check the clock"
        )
    return minutes
