"""Staff routes (staff token): households, attestation, the dongle registry and the audit log."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from gateway import challenges, registry
from gateway.api.bank_answers import collector
from gateway.api.deps import ERRORS, Ctx, StaffAuth
from gateway.api.schemas import (
    ActivateRequest,
    AttestationIn,
    AttestationRequest,
    AttestationResult,
    AuditList,
    ChallengeOut,
    DongleList,
    DongleOut,
    HouseholdCreateRequest,
    MandateBindRequest,
    MandateList,
    MandateOut,
    MandateRevokeRequest,
    NonceOut,
    RebindRequest,
    ReconciliationList,
    ReconciliationOut,
    RefundOut,
    RefundRequest,
    RegisterRequest,
    RevokeRequest,
    StaffHouseholdOut,
    WalletCreditOut,
    WalletCreditRequest,
    decode_b64,
)
from gateway.clock import iso
from gateway.db.models import AuditEntry
from gateway.funding.refunds import refund_payment
from gateway.funding.wallet import credit_wallet
from gateway.mandates import bind_mandate, list_mandates, revoke_mandate
from gateway.reconcile import store as reconciliations
from gateway.views import b64
from protocol.pki import MAX_CERTIFICATE_BYTES, Attestation

router = APIRouter(prefix="/api/v1/staff", responses=ERRORS, tags=["staff"])

DongleIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
HouseholdNoPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,32}$")]
PaymentIdPath = Annotated[str, Path(pattern=r"^[a-z]{3,4}_[0-9a-f]{32}$")]


def _attestation(a: AttestationIn) -> Attestation:
    return Attestation(
        dongle_id=a.dongle_id,
        key_rev=a.key_rev,
        public_key=decode_b64(a.public_key, "public_key", 0, 65),
        nonce=decode_b64(a.nonce, "nonce", 16, 64),
        signature=decode_b64(a.signature, "signature", 64, 64),
        certificates=tuple(
            decode_b64(c, "certificate", 1, MAX_CERTIFICATE_BYTES) for c in a.certificates
        ),
    )


@router.post("/households", response_model=StaffHouseholdOut, status_code=201)
def create_household(body: HouseholdCreateRequest, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return c.db.write(
        lambda s: registry.create_household(s, who.name, body.household_no, body.name, body.address)
    )


@router.get("/households/{household_no}", response_model=StaffHouseholdOut)
def get_household(household_no: HouseholdNoPath, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return c.db.read(lambda s: registry.get_household(s, household_no))


@router.post("/attestation-nonce", response_model=NonceOut)
def attestation_nonce(who: StaffAuth, c: Ctx) -> dict[str, Any]:
    row = c.db.write(lambda s: challenges.issue(s, "attest", c.config.payment_ttl_seconds))
    return {"nonce": b64(row.challenge), "expires_at": iso(row.expires_at)}


@router.post("/attestations/verify", response_model=AttestationResult)
def verify_attestation(body: AttestationRequest, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    att = _attestation(body.attestation)
    return c.db.write(lambda s: registry.check_attestation(s, who.name, att, c.manufacturer_cas))


@router.post("/dongles", response_model=DongleOut, status_code=201)
def register(body: RegisterRequest, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    att = _attestation(body.attestation)
    return c.db.write(
        lambda s: registry.register(
            s, who.name, c.keys, c.manufacturer_cas, body.household_no, att, body.role
        )
    )


@router.post("/dongles/{dongle_id}/activation-challenge", response_model=ChallengeOut)
def activation_challenge(dongle_id: DongleIdPath, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    challenge, timestamp, expires_at = c.db.write(
        lambda s: registry.activation_challenge(s, dongle_id, c.config.challenge_ttl_seconds)
    )
    return {
        "challenge": b64(challenge),
        "gateway_id": c.config.gateway_id,
        "timestamp": timestamp,
        "expires_at": iso(expires_at),
    }


@router.post("/dongles/{dongle_id}/activate", response_model=DongleOut)
def activate(
    dongle_id: DongleIdPath, body: ActivateRequest, who: StaffAuth, c: Ctx
) -> dict[str, Any]:
    challenge = decode_b64(body.challenge, "challenge", 16, 64)
    signature = decode_b64(body.signature, "signature", 64, 64)
    return c.db.write(
        lambda s: registry.activate(
            s,
            who.name,
            c.config.gateway_id,
            dongle_id,
            body.key_rev,
            challenge,
            body.timestamp,
            signature,
        )
    )


@router.post("/dongles/{dongle_id}/revoke", response_model=DongleOut)
def revoke(dongle_id: DongleIdPath, body: RevokeRequest, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return c.db.write(lambda s: registry.revoke(s, who.name, dongle_id, body.reason))


@router.post("/dongles/{dongle_id}/rebind", response_model=DongleOut)
def rebind(dongle_id: DongleIdPath, body: RebindRequest, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return c.db.write(lambda s: registry.rebind(s, who.name, c.keys, dongle_id, body.household_no))


@router.get("/dongles", response_model=DongleList)
def list_dongles(
    who: StaffAuth,
    c: Ctx,
    status: Literal["pending", "active", "revoked"] | None = None,
    household_no: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9-]{1,32}$")] = None,
) -> dict[str, Any]:
    return {"dongles": c.db.read(lambda s: registry.list_dongles(s, status, household_no))}


@router.get("/dongles/{dongle_id}", response_model=DongleOut)
def get_dongle(dongle_id: DongleIdPath, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return c.db.read(lambda s: registry.get_dongle(s, dongle_id))


@router.get("/audit", response_model=AuditList)
def audit_log(
    who: StaffAuth,
    c: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    def work(s: Any) -> list[dict[str, Any]]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        return [
            {
                "id": e.id,
                "at": iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "details": json.loads(e.details),
            }
            for e in s.scalars(query)
        ]

    return {"entries": c.db.read(work)}


@router.post("/households/{household_no}/wallet/credits", response_model=WalletCreditOut)
def wallet_credit(
    household_no: HouseholdNoPath, body: WalletCreditRequest, who: StaffAuth, c: Ctx
) -> dict[str, Any]:
    """Credit money received at a shop or by bank transfer; the same reference twice credits
    once (docs/money.md)."""
    return c.db.write(
        lambda s: credit_wallet(
            s,
            who.name,
            household_no,
            body.amount_fen,
            body.currency,
            body.reference,
            body.channel,
        )
    )


@router.post("/payments/{payment_id}/refund", response_model=RefundOut)
def refund(
    payment_id: PaymentIdPath, body: RefundRequest, who: StaffAuth, c: Ctx
) -> dict[str, Any]:
    """Give a payment's money back to its funding source, once (docs/money.md)."""
    return c.db.write(lambda s: refund_payment(s, who.name, payment_id, body.reason))


MandateIdPath = Annotated[str, Path(pattern=r"^mnd_[0-9a-f]{32}$")]


@router.post("/households/{household_no}/mandates", response_model=MandateOut, status_code=201)
def bind_card(
    household_no: HouseholdNoPath, body: MandateBindRequest, who: StaffAuth, c: Ctx
) -> dict[str, Any]:
    """Record a direct-debit mandate the household signed at its bank (docs/money.md)."""
    collector(c)  # refuse while no bank is configured: the mandate could never be debited
    return c.db.write(
        lambda s: bind_mandate(
            s,
            who.name,
            household_no,
            body.bank_token,
            body.card_masked,
            body.per_payment_limit_fen,
            body.monthly_limit_fen,
            body.currency,
        )
    )


@router.get("/households/{household_no}/mandates", response_model=MandateList)
def household_mandates(household_no: HouseholdNoPath, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return {"mandates": c.db.read(lambda s: list_mandates(s, household_no))}


@router.post("/mandates/{mandate_id}/revoke", response_model=MandateOut)
def revoke_card(
    mandate_id: MandateIdPath, body: MandateRevokeRequest, who: StaffAuth, c: Ctx
) -> dict[str, Any]:
    """No new payments from the card; payments already at the bank still finish."""
    return c.db.write(lambda s: revoke_mandate(s, who.name, mandate_id, body.reason))


ReconciliationIdPath = Annotated[str, Path(pattern=r"^rec_[0-9a-f]{32}$")]


@router.get("/reconciliations", response_model=ReconciliationList)
def list_reconciliations(
    who: StaffAuth, c: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    """The latest reconciled files, newest first, with their counts (docs/money.md)."""
    return {"reconciliations": c.db.read(lambda s: reconciliations.listing(s, limit))}


@router.get("/reconciliations/{reconciliation_id}", response_model=ReconciliationOut)
def get_reconciliation(
    reconciliation_id: ReconciliationIdPath, who: StaffAuth, c: Ctx
) -> dict[str, Any]:
    """One report with its findings: what staff must look at, line by line."""
    return c.db.read(lambda s: reconciliations.get(s, reconciliation_id))
