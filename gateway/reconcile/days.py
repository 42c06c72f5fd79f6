"""The reconciliation day: a UTC calendar day, as the utility and bank simulators count theirs
(``written_off_at`` and the settlement's ``at`` are dated in UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gateway.reconcile.rules import ReconcileError


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text) if len(text) == 10 else date.fromisoformat("x")
    except ValueError:
        raise ReconcileError(f"date {text[:20]!r} is not YYYY-MM-DD") from None


def bounds(day: date) -> tuple[int, int]:
    """[start, end) of ``day`` in Unix seconds."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return start, start + int(timedelta(days=1).total_seconds())
