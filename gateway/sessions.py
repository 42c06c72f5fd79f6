"""Device sessions: a dongle proves itself by signing a gateway challenge (SessionChallenge,
docs/protocol.md §5.2) and gets a short-lived bearer token for its household."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway import challenges
from gateway.clock import now
from gateway.db.models import DeviceSession, Dongle, Household
from gateway.errors import Conflict, Forbidden, NotFound, Unauthenticated
from gateway.ids import DEVICE_TOKEN_PREFIX, new_token, token_hash
from protocol.errors import PayloadError
from protocol.signing import Algorithm, SessionChallenge, load_public_key, verify


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """The payment key the session's dongle proved it holds, as registered here."""

    public_key: bytes
    key_rev: int


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    dongle_id: str
    household_id: int


def find_dongle(session: Session, dongle_id: str, lock: bool = False) -> Dongle:
    dongle = session.get(Dongle, dongle_id, with_for_update=lock)
    if dongle is None:
        raise NotFound(
            f"Dongle {dongle_id} is not registered with this gateway; telecom staff must "
            "provision it first.",
            code="dongle_unknown",
        )
    return dongle


def require_active(dongle: Dongle) -> None:
    if dongle.status == "active":
        return
    why = {
        "pending": "its provisioning was not finished; staff must activate it",
        "revoked": "it was revoked; contact the telecom for a new dongle",
    }.get(dongle.status, f"its state is {dongle.status}")
    raise Forbidden(f"Dongle {dongle.dongle_id} cannot be used: {why}.", code="dongle_not_active")


def require_key_rev(dongle: Dongle, key_rev: int) -> None:
    if dongle.key_rev != key_rev:
        raise Conflict(
            f"Dongle {dongle.dongle_id} signed with key {key_rev} but key {dongle.key_rev} is "
            "registered; the dongle must be provisioned again.",
            code="key_rev_mismatch",
        )


def verify_session_signature(
    dongle: Dongle, gateway_id: str, challenge: bytes, timestamp: int, signature: bytes
) -> None:
    """Check a SessionChallenge signature against the dongle's registered key (401 if bad)."""
    try:
        payload = SessionChallenge(
            alg=Algorithm.ES256,
            gateway_id=gateway_id,
            dongle_id=dongle.dongle_id,
            key_rev=dongle.key_rev,
            challenge=challenge,
            timestamp=timestamp,
        )
        ok = verify(load_public_key(dongle.public_key), payload.signed_bytes(), signature)
    except PayloadError:
        ok = False
    if not ok:
        raise Unauthenticated(
            "The dongle's signature does not verify; ask for a new challenge and sign again.",
            code="signature_invalid",
        )


def open_session(
    session: Session,
    gateway_id: str,
    ttl: int,
    dongle_id: str,
    key_rev: int,
    challenge: bytes,
    timestamp: int,
    signature: bytes,
) -> tuple[str, int, Household, RegisteredKey]:
    """Verify the signed challenge; returns (token, expires_at, household, the dongle's key)."""
    dongle = find_dongle(session, dongle_id)
    require_active(dongle)
    row = challenges.consume(session, challenge, "session", dongle_id, "challenge_invalid")
    if row.timestamp != timestamp:
        raise Unauthenticated(
            "The signed timestamp is not the one issued with the challenge; sign the values "
            "the gateway sent.",
            code="signature_invalid",
        )
    require_key_rev(dongle, key_rev)
    verify_session_signature(dongle, gateway_id, challenge, timestamp, signature)
    token = new_token(DEVICE_TOKEN_PREFIX)
    t = now()
    session.execute(delete(DeviceSession).where(DeviceSession.expires_at < t))
    session.add(
        DeviceSession(
            token_hash=token_hash(token),
            dongle_id=dongle_id,
            household_id=dongle.household_id,
            expires_at=t + ttl,
        )
    )
    household = session.get(Household, dongle.household_id)
    assert household is not None  # foreign key
    return token, t + ttl, household, RegisteredKey(dongle.public_key, dongle.key_rev)


def authenticate_device(session: Session, token: str | None) -> DeviceIdentity:
    """The dongle and household behind a device token; 401 when missing, unknown or expired."""
    if not token or not token.startswith(DEVICE_TOKEN_PREFIX):
        raise Unauthenticated(
            "This needs a device session token (Authorization: Bearer tvpd_…); open a device "
            "session with the dongle first."
        )
    row = session.execute(
        select(DeviceSession.dongle_id, DeviceSession.household_id, DeviceSession.expires_at).where(
            DeviceSession.token_hash == token_hash(token)
        )
    ).first()
    if row is None or row.expires_at < now():
        raise Unauthenticated("The device session has expired; open a new one with the dongle.")
    return DeviceIdentity(row.dongle_id, row.household_id)


def end_sessions(session: Session, dongle_id: str) -> None:
    """Drop a dongle's sessions (on revoke or rebind, so no old token outlives the change)."""
    session.execute(delete(DeviceSession).where(DeviceSession.dongle_id == dongle_id))
