"""Time for records: integer Unix seconds in the database, ISO-8601 UTC on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> int:
    """Current UTC wall-clock time as Unix seconds."""
    return int(time.time())


def iso(unix: int | None) -> str | None:
    """``2025-06-01T08:00:00Z`` for a Unix time (None stays None)."""
    if unix is None:
        return None
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> str:
    """Today's date in UTC as YYYY-MM-DD."""
    return datetime.now(UTC).strftime("%Y-%m-%d")
