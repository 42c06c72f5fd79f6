"""The limiter on proofs of account ownership (holder name and bind code alike).

Each failed proof is a ``bind_failures`` row naming the household that sent it and the account it
was for. Two limits read them over a sliding window:

- per household: after ``HOUSEHOLD_LIMIT`` failures, every bind from that household is paused,
  right proof or not, until the oldest of them leaves the window;
- per account: after ``ACCOUNT_LIMIT`` failures, more than one household can make under its own
  limit, the account is under attack. Then every household that already failed at it is
  stopped, and so is a holder name from a household registered under another name (a name can
  be guessed). The owner still gets through, at the first try: with the bind code printed on
  the bill, or by name from the household the telecom registered under the holder's name.

Rows live in the database, so the limits hold across workers and restarts; the caller holds the
household's and the account's row locks, so parallel guesses cannot slip under a limit.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from gateway.db.models import BindFailure
from gateway.errors import TooManyRequests

HOUSEHOLD_LIMIT = 5
ACCOUNT_LIMIT = 10
WINDOW_SECONDS = 15 * 60


def _paused(code: str, why: str, until: int, t: int, meanwhile: str = "") -> TooManyRequests:
    wait = max(1, until - t)
    clock = datetime.fromtimestamp(until, UTC).strftime("%H:%M UTC")
    return TooManyRequests(
        f"{why}; try again in {(wait + 59) // 60} minutes (after {clock}){meanwhile}.",
        code=code,
        headers={"Retry-After": str(wait)},
    )


def household_pause(session: Session, household_id: int, t: int) -> TooManyRequests | None:
    """Why this household may not try any proof now, or None."""
    failures = list(
        session.scalars(
            select(BindFailure.at)
            .where(BindFailure.household_id == household_id, BindFailure.at > t - WINDOW_SECONDS)
            .order_by(BindFailure.at)
        )
    )
    if len(failures) < HOUSEHOLD_LIMIT:
        return None
    return _paused(
        "too_many_attempts",
        "Too many wrong holder names or bind codes from this household",
        failures[-HOUSEHOLD_LIMIT] + WINDOW_SECONDS,  # when the oldest that counts expires
        t,
    )


def account_pause(
    session: Session, household_id: int, account_id: str, owner_proof: bool, t: int
) -> TooManyRequests | None:
    """Why this household may not try a proof for this account now, or None.

    ``owner_proof``: the proof is one a guesser cannot make up — a bind code, or the holder name
    sent by the household registered under that name.
    """
    recent = select(BindFailure.household_id, BindFailure.at).where(
        BindFailure.account_id == account_id, BindFailure.at > t - WINDOW_SECONDS
    )
    rows = session.execute(recent.order_by(BindFailure.at)).all()
    if len(rows) < ACCOUNT_LIMIT:
        return None
    until = rows[-ACCOUNT_LIMIT].at + WINDOW_SECONDS
    if any(who == household_id for who, _ in rows):
        return _paused(
            "account_bind_paused",
            "This account received too many wrong holder names or bind codes from several TVs, "
            "and this household's own try was wrong too",
            until,
            t,
        )
    if not owner_proof:
        return _paused(
            "account_bind_paused",
            "This account received too many wrong holder names or bind codes from several TVs, "
            "so binding it by name is paused",
            until,
            t,
            ", or bind it now with the 6-digit bind code printed on the bill",
        )
    return None


def record_failure(session: Session, household_id: int, account_id: str | None, t: int) -> int:
    """Count a failed proof (and forget those past the window); how many tries the household
    has left before its pause. ``account_id`` is None for a number no account has: probing
    which numbers exist costs tries too."""
    session.execute(
        delete(BindFailure).where(
            or_(BindFailure.household_id == household_id, BindFailure.account_id == account_id),
            BindFailure.at <= t - WINDOW_SECONDS,
        )
    )
    session.add(BindFailure(household_id=household_id, account_id=account_id, at=t))
    session.flush()
    count = session.scalar(
        select(func.count())
        .select_from(BindFailure)
        .where(BindFailure.household_id == household_id)
    )
    return max(0, HOUSEHOLD_LIMIT - (count or 0))
