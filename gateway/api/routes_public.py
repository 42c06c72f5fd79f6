"""Public routes: health, gateway identity, receipt lookup, and device-session opening."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy import text

from gateway import challenges
from gateway.api.deps import ERRORS, Ctx
from gateway.api.schemas import (
    ChallengeOut,
    ChallengeRequest,
    GatewayInfo,
    Health,
    PublicReceipt,
    SessionOut,
    SessionRequest,
    decode_b64,
)
from gateway.clock import iso
from gateway.masking import mask_name
from gateway.payments import public_receipt
from gateway.sessions import find_dongle, open_session, require_active
from gateway.views import b64

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/health", response_model=Health, tags=["public"])
def health(c: Ctx) -> dict[str, str]:
    c.db.read(lambda s: s.execute(text("SELECT 1")))
    return {"status": "ok", "database": "ok"}


@router.get("/gateway", response_model=GatewayInfo, tags=["public"])
def gateway_info(c: Ctx) -> dict[str, Any]:
    return {
        "gateway_id": c.config.gateway_id,
        "receipt_public_key_pem": c.keys.receipt_public_pem,
        "receipt_key_id": c.keys.receipt_key_id,
        "operator_ca_pem": c.keys.operator_ca_pem,
        "currencies": ["CNY"],
        "api_version": 1,
    }


@router.get("/receipts/{receipt_no}", response_model=PublicReceipt, tags=["public"])
def receipt(
    receipt_no: Annotated[str, Path(pattern=r"^rcp_[0-9a-f]{32}$")], c: Ctx
) -> dict[str, Any]:
    body = c.db.read(lambda s: public_receipt(s, receipt_no))
    return {"receipt": body, "receipt_public_key_pem": c.keys.receipt_public_pem, "valid": True}


@router.post("/device-sessions/challenge", response_model=ChallengeOut, tags=["device"])
def session_challenge(body: ChallengeRequest, c: Ctx) -> dict[str, Any]:
    def work(s: Any) -> dict[str, Any]:
        require_active(find_dongle(s, body.dongle_id))
        row = challenges.issue(s, "session", c.config.challenge_ttl_seconds, body.dongle_id)
        return {
            "challenge": b64(row.challenge),
            "gateway_id": c.config.gateway_id,
            "timestamp": row.timestamp,
            "expires_at": iso(row.expires_at),
        }

    return c.db.write(work)


@router.post("/device-sessions", response_model=SessionOut, status_code=201, tags=["device"])
def open_device_session(body: SessionRequest, c: Ctx) -> dict[str, Any]:
    challenge = decode_b64(body.challenge, "challenge", 16, 64)
    signature = decode_b64(body.signature, "signature", 64, 64)
    token, expires_at, household, key = c.db.write(
        lambda s: open_session(
            s,
            c.config.gateway_id,
            c.config.session_ttl_seconds,
            body.dongle_id,
            body.key_rev,
            challenge,
            body.timestamp,
            signature,
        )
    )
    return {
        "token": token,
        "expires_at": iso(expires_at),
        "household": {
            "household_no": household.household_no,
            "name_masked": mask_name(household.name),
        },
        "dongle_public_key": b64(key.public_key),
        "key_rev": key.key_rev,
    }
