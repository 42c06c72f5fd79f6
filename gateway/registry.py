"""The dongle registry, driven by telecom staff: register (attestation → device certificate, status
pending), activate (proof that the dongle is locked), revoke, rebind. Every action is audited."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit, challenges
from gateway.attestation import verify_attestation
from gateway.clock import now
from gateway.db.models import Dongle, Household
from gateway.errors import BadRequest, Conflict, NotFound, Unprocessable
from gateway.keys import GatewayKeys, issue_device_certificate
from gateway.sessions import end_sessions, find_dongle, require_key_rev, verify_session_signature
from gateway.shop.shops import Role, check_role
from gateway.views import dongle_view, household_view
from protocol.errors import PayloadError
from protocol.pki import Attestation
from protocol.signing import load_public_key


def find_household(session: Session, household_no: str) -> Household:
    household = session.scalar(select(Household).where(Household.household_no == household_no))
    if household is None:
        raise NotFound(
            f"Household {household_no} does not exist; check the number or create it first.",
            code="household_not_found",
        )
    return household


def create_household(
    session: Session, actor: str, household_no: str, name: str, address: str
) -> dict[str, Any]:
    if session.scalar(select(Household.id).where(Household.household_no == household_no)):
        raise Conflict(f"Household {household_no} already exists.", code="household_exists")
    household = Household(household_no=household_no, name=name, address=address, created_at=now())
    session.add(household)
    session.flush()
    audit.record(session, actor, "household_create", household_no)
    return household_view(household, [])


def get_household(session: Session, household_no: str) -> dict[str, Any]:
    household = find_household(session, household_no)
    dongles = session.scalars(select(Dongle).where(Dongle.household_id == household.id))
    return household_view(household, list(dongles))


def consume_nonce(session: Session, nonce: bytes) -> None:
    challenges.consume(session, nonce, "attest", None, "nonce_invalid")


def check_attestation(
    session: Session, actor: str, att: Attestation, trusted: tuple[x509.Certificate, ...]
) -> dict[str, Any]:
    """Verify a dongle is genuine without registering anything (the nonce is used up)."""
    consume_nonce(session, att.nonce)
    verify_attestation(att, trusted)
    audit.record(session, actor, "attestation_check", att.dongle_id, key_rev=att.key_rev)
    return {
        "dongle_id": att.dongle_id,
        "key_rev": att.key_rev,
        "genuine": True,
        "has_key": bool(att.public_key),
    }


def register(
    session: Session,
    actor: str,
    keys: GatewayKeys,
    trusted: tuple[x509.Certificate, ...],
    household_no: str,
    att: Attestation,
    role: Role = "home",
) -> dict[str, Any]:
    """Register a dongle's payment key as PENDING and return its device certificate; ``role``
    (home or shop) must be the household's kind."""
    consume_nonce(session, att.nonce)
    verify_attestation(att, trusted)
    if not att.public_key:
        raise Unprocessable(
            "The attestation carries no payment key; generate the key on the dongle, then attest "
            "again with a fresh nonce.",
            code="attestation_invalid",
        )
    household = find_household(session, household_no)
    check_role(household, role)
    try:
        public_key = load_public_key(att.public_key)
    except PayloadError as exc:
        raise Unprocessable(str(exc), code="attestation_invalid") from None
    dongle = session.get(Dongle, att.dongle_id, with_for_update=True)
    t = now()
    if dongle is not None:
        same_key = dongle.key_rev == att.key_rev and dongle.public_key == att.public_key
        if dongle.status == "pending" and same_key and dongle.household_id == household.id:
            return dongle_view(dongle, household)  # a retried registration
        if dongle.status == "active":
            raise Conflict(
                f"Dongle {att.dongle_id} is active; revoke it before registering it again.",
                code="dongle_already_active",
            )
        if att.key_rev <= dongle.key_rev:
            raise Conflict(
                f"Dongle {att.dongle_id} already had key {dongle.key_rev}; generate a new key on "
                "the dongle and attest again.",
                code="key_rev_stale",
            )
        audit.record(
            session,
            actor,
            "dongle_key_superseded",
            att.dongle_id,
            old_key_rev=dongle.key_rev,
            old_status=dongle.status,
        )
    else:
        dongle = Dongle(dongle_id=att.dongle_id, last_counter=0)
        session.add(dongle)
    dongle.household_id = household.id
    dongle.status = "pending"
    dongle.key_rev = att.key_rev
    dongle.public_key = att.public_key
    dongle.certificate = issue_device_certificate(keys, att.dongle_id, household_no, public_key)
    dongle.registered_at = t
    dongle.activated_at = None
    dongle.revoked_at = None
    dongle.revoke_reason = None
    session.flush()
    audit.record(
        session,
        actor,
        "dongle_register",
        att.dongle_id,
        key_rev=att.key_rev,
        household_no=household_no,
    )
    return dongle_view(dongle, household)


def activation_challenge(session: Session, dongle_id: str, ttl: int) -> tuple[bytes, int, int]:
    dongle = find_dongle(session, dongle_id)
    if dongle.status == "revoked":
        raise Conflict(f"Dongle {dongle_id} is revoked.", code="dongle_not_pending")
    row = challenges.issue(session, "activate", ttl, dongle_id)
    return row.challenge, row.timestamp, row.expires_at


def activate(
    session: Session,
    actor: str,
    gateway_id: str,
    dongle_id: str,
    key_rev: int,
    challenge: bytes,
    timestamp: int,
    signature: bytes,
) -> dict[str, Any]:
    """PENDING → ACTIVE once the dongle signs a session challenge, which it does only locked."""
    dongle = find_dongle(session, dongle_id, lock=True)
    row = challenges.consume(session, challenge, "activate", dongle_id, "challenge_invalid")
    require_key_rev(dongle, key_rev)
    if row.timestamp != timestamp:
        raise BadRequest(
            "The signed timestamp is not the one issued with the challenge.",
            code="challenge_invalid",
        )
    verify_session_signature(dongle, gateway_id, challenge, timestamp, signature)
    household = session.get(Household, dongle.household_id)
    assert household is not None  # foreign key
    if dongle.status == "active":
        return dongle_view(dongle, household)
    if dongle.status != "pending":
        raise Conflict(
            f"Dongle {dongle_id} is {dongle.status}; only a pending dongle can be activated.",
            code="dongle_not_pending",
        )
    dongle.status = "active"
    dongle.activated_at = now()
    audit.record(session, actor, "dongle_activate", dongle_id, key_rev=key_rev)
    return dongle_view(dongle, household)


def revoke(session: Session, actor: str, dongle_id: str, reason: str) -> dict[str, Any]:
    dongle = find_dongle(session, dongle_id, lock=True)
    if dongle.status != "revoked":
        dongle.status = "revoked"
        dongle.revoked_at = now()
        dongle.revoke_reason = reason
        end_sessions(session, dongle_id)
        audit.record(session, actor, "dongle_revoke", dongle_id, reason=reason)
    household = session.get(Household, dongle.household_id)
    assert household is not None
    return dongle_view(dongle, household)


def rebind(
    session: Session, actor: str, keys: GatewayKeys, dongle_id: str, household_no: str
) -> dict[str, Any]:
    dongle = find_dongle(session, dongle_id, lock=True)
    if dongle.status == "revoked":
        raise Conflict(
            f"Dongle {dongle_id} is revoked and cannot be rebound.", code="dongle_revoked"
        )
    household = find_household(session, household_no)
    old = session.get(Household, dongle.household_id)
    dongle.household_id = household.id
    dongle.certificate = issue_device_certificate(
        keys, dongle_id, household_no, load_public_key(dongle.public_key)
    )
    end_sessions(session, dongle_id)
    audit.record(
        session,
        actor,
        "dongle_rebind",
        dongle_id,
        from_household=old.household_no if old else None,
        to_household=household_no,
    )
    return dongle_view(dongle, household)


def get_dongle(session: Session, dongle_id: str) -> dict[str, Any]:
    dongle = find_dongle(session, dongle_id)
    household = session.get(Household, dongle.household_id)
    assert household is not None
    return dongle_view(dongle, household)


def list_dongles(
    session: Session, status: str | None, household_no: str | None
) -> list[dict[str, Any]]:
    query = select(Dongle, Household).join(Household, Dongle.household_id == Household.id)
    if status:
        query = query.where(Dongle.status == status)
    if household_no:
        query = query.where(Household.household_no == household_no)
    rows = session.execute(query.order_by(Dongle.dongle_id).limit(1000))
    return [dongle_view(d, h) for d, h in rows]
