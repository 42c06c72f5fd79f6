"""Staff members and their API tokens (stored hashed; the token is shown once, at creation)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.clock import now
from gateway.db.models import Staff
from gateway.errors import Conflict, NotFound, Unauthenticated
from gateway.ids import STAFF_TOKEN_PREFIX, new_token, token_hash


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    name: str


def add_staff(session: Session, name: str) -> str:
    """Create a staff member; returns the token, which is not stored anywhere."""
    if session.scalar(select(Staff).where(Staff.name == name)) is not None:
        raise Conflict(f"staff member {name!r} exists; pick another name or revoke the old one")
    token = new_token(STAFF_TOKEN_PREFIX)
    session.add(Staff(name=name, token_hash=token_hash(token), created_at=now()))
    audit.record(session, "cli", "staff_add", name)
    return token


def revoke_staff(session: Session, name: str) -> None:
    staff = session.scalar(select(Staff).where(Staff.name == name))
    if staff is None:
        raise NotFound(f"no staff member named {name!r}; see 'tvpay-gateway staff list'")
    staff.revoked_at = staff.revoked_at or now()
    audit.record(session, "cli", "staff_revoke", name)


def list_staff(session: Session) -> list[Staff]:
    return list(session.scalars(select(Staff).order_by(Staff.name)))


def authenticate_staff(session: Session, token: str | None) -> StaffMember:
    """The staff member owning a bearer token; 401 for anything else."""
    if not token or not token.startswith(STAFF_TOKEN_PREFIX):
        raise Unauthenticated(
            "This needs a staff token (Authorization: Bearer tvps_…); an operator creates one "
            "with 'tvpay-gateway staff add NAME'."
        )
    staff = session.scalar(select(Staff).where(Staff.token_hash == token_hash(token)))
    if staff is None or staff.revoked_at is not None:
        raise Unauthenticated(
            "The staff token is unknown or revoked; ask an operator for a new one."
        )
    return StaffMember(staff.id, staff.name)
