"""The shop downstairs (docs/gateway.md §1.10): a shop's box sells electricity to any account
(device session of a shop's dongle) and shows the day's sales; staff add and list shops. A sale
is paid with the ordinary authorize route."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from gateway.api.deps import ERRORS, Ctx, Device, StaffAuth
from gateway.api.routes_household import idempotent_answer, require_idempotency_key
from gateway.api.schemas_shop import (
    CreatedSale,
    SaleRequest,
    ShopCreateRequest,
    ShopList,
    ShopOut,
    ShopReport,
)
from gateway.clock import now
from gateway.idempotency import request_hash
from gateway.shop import report, sales, shops

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["shop"])


@router.post("/shop/sales", response_model=CreatedSale, status_code=201)
def sell(
    body: SaleRequest,
    request: Request,
    dev: Device,
    c: Ctx,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    key = require_idempotency_key(idempotency_key)
    digest = request_hash(request.url.path, body.model_dump())
    card = body.card.to_card() if body.card is not None else None
    customer = sales.Customer(account_no=body.account_no, biller=body.biller, card=card)

    def work(s: Session) -> tuple[int, dict[str, Any]]:
        return 201, sales.sell(
            s,
            dev.household_id,
            c.config.gateway_id,
            c.config.payment_ttl_seconds,
            customer,
            body.amount_fen,
            body.currency,
            c.keys.vending_secret,
            now(),
        )

    return idempotent_answer(c, dev.household_id, key, digest, work)


@router.get("/shop/report", response_model=ShopReport)
def day(
    dev: Device,
    c: Ctx,
    day: Annotated[date, Query(alias="date", description="YYYY-MM-DD, Asia/Shanghai")],
) -> dict[str, Any]:
    return c.db.read(lambda s: report.day_report(s, dev.household_id, day))


@router.post("/staff/shops", response_model=ShopOut, status_code=201)
def add_shop(body: ShopCreateRequest, who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return c.db.write(
        lambda s: shops.add_shop(
            s, who.name, body.shop_no, body.name, body.address, body.commission_bp
        )
    )


@router.get("/staff/shops", response_model=ShopList)
def list_shops(who: StaffAuth, c: Ctx) -> dict[str, Any]:
    return {"shops": c.db.read(shops.list_shops)}
