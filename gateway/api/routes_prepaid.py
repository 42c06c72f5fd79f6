"""Prepaid electricity routes (device token): meters, quotes, purchases (docs/gateway.md §1.9).
A purchase is paid with the ordinary authorize route."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from gateway.api.deps import ERRORS, Ctx, Device
from gateway.api.routes_household import ID_PATTERN, idempotent_answer, require_idempotency_key
from gateway.api.schemas import Currency
from gateway.api.schemas_prepaid import (
    CreatedPurchase,
    CreatePurchaseRequest,
    MeterList,
    PurchaseList,
    PurchaseOut,
    QuoteOut,
)
from gateway.clock import now
from gateway.idempotency import request_hash
from gateway.prepaid import meters, purchases

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["prepaid"])

MeterId = Annotated[str, Path(pattern=ID_PATTERN)]
PurchaseId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get("/meters", response_model=MeterList)
def meter_list(dev: Device, c: Ctx) -> dict[str, Any]:
    return {"meters": meters.household_meter_list(c.db, dev.household_id)}


@router.get("/meters/{meter_id}/quote", response_model=QuoteOut)
def quote(
    meter_id: MeterId,
    dev: Device,
    c: Ctx,
    amount_fen: Annotated[int, Query(ge=1, le=10**12)],
    currency: Annotated[Currency, Query()] = "CNY",
) -> dict[str, Any]:
    def work(s: Any) -> dict[str, Any]:
        row = meters.find_meter(s, dev.household_id, meter_id)
        return purchases.quote_for(s, row, amount_fen, currency, now()).to_json(currency)

    return c.db.read(work)


@router.post("/purchases", response_model=CreatedPurchase, status_code=201)
def create(
    body: CreatePurchaseRequest,
    request: Request,
    dev: Device,
    c: Ctx,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    key = require_idempotency_key(idempotency_key)
    digest = request_hash(request.url.path, body.model_dump())
    card = body.card.to_card() if body.card is not None else None

    def work(s: Session) -> tuple[int, dict[str, Any]]:
        return 201, purchases.create_purchase(
            s,
            dev.household_id,
            c.config.gateway_id,
            c.config.payment_ttl_seconds,
            body.meter_id,
            body.amount_fen,
            body.currency,
            body.funding_source,
            card,
            c.keys.vending_secret,
            now(),
        )

    return idempotent_answer(c, dev.household_id, key, digest, work)


@router.get("/purchases", response_model=PurchaseList)
def purchase_list(
    dev: Device, c: Ctx, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> dict[str, Any]:
    return {"purchases": c.db.read(lambda s: purchases.list_purchases(s, dev.household_id, limit))}


@router.get("/purchases/{purchase_id}", response_model=PurchaseOut)
def purchase(purchase_id: PurchaseId, dev: Device, c: Ctx) -> dict[str, Any]:
    # A write: a paid token purchase gets its token on the first look.
    secret = c.keys.vending_secret
    return c.db.write(
        lambda s: purchases.get_purchase(s, dev.household_id, purchase_id, secret, now())
    )
