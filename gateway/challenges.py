"""Single-use challenges: device sessions, dongle activation and attestation nonces."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from gateway.clock import now
from gateway.db.models import Challenge
from gateway.errors import BadRequest
from gateway.ids import new_challenge


def issue(session: Session, purpose: str, ttl: int, dongle_id: str | None = None) -> Challenge:
    """A fresh challenge; expired ones are swept at the same time so the table stays small."""
    t = now()
    session.execute(delete(Challenge).where(Challenge.expires_at < t))
    row = Challenge(
        challenge=new_challenge(),
        purpose=purpose,
        dongle_id=dongle_id,
        timestamp=t,
        expires_at=t + ttl,
    )
    session.add(row)
    return row


def consume(
    session: Session, challenge: bytes, purpose: str, dongle_id: str | None, code: str
) -> Challenge:
    """Take a challenge out of the table (single use); 400 ``code`` when it is not valid.

    The caller's transaction decides: if a later check fails and it rolls back, the challenge is
    still there to be used by a corrected request until it expires.
    """
    row = session.get(Challenge, challenge, with_for_update=True)
    if (
        row is None
        or row.purpose != purpose
        or row.dongle_id != dongle_id
        or row.expires_at < now()
    ):
        raise BadRequest(
            "The challenge is unknown, already used, expired or for another purpose; ask for a "
            "new one.",
            code=code,
        )
    session.delete(row)
    return row
