"""Household routes (device token): accounts, bills, usage, payments and their authorization."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from gateway import household as hh
from gateway.api.bank_answers import after_authorize
from gateway.api.deps import ERRORS, Ctx, Device
from gateway.api.schemas import (
    AccountList,
    AccountOut,
    AuthorizedPayment,
    AuthorizeRequest,
    BillList,
    BindRequest,
    CreatedPayment,
    CreatePaymentRequest,
    CreditingCheckOut,
    DefaultSourceRequest,
    FundingSourceList,
    HouseholdOut,
    PaymentList,
    PaymentOut,
    ProcessingPayment,
    UsageOut,
    decode_b64,
)
from gateway.binding import Proof, Refusal, bind_account
from gateway.context import GatewayContext
from gateway.crediting import crediting_check
from gateway.errors import BadRequest
from gateway.funding.sources import list_sources, set_default
from gateway.idempotency import request_hash, run_idempotent
from gateway.payments import Authorization, authorize, create_payment

router = APIRouter(prefix="/api/v1", responses=ERRORS)

ID_PATTERN = r"^[a-z]{3,4}_[0-9a-f]{32}$"
AccountId = Annotated[str, Path(pattern=ID_PATTERN)]
PaymentId = Annotated[str, Path(pattern=ID_PATTERN)]
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def require_idempotency_key(key: str | None) -> str:
    """The Idempotency-Key header of a request that starts a payment, or 400."""
    if key is None:
        raise BadRequest(
            "Send an Idempotency-Key header (a new UUID for each payment the user starts).",
            code="idempotency_key_missing",
        )
    if not _KEY.fullmatch(key):
        raise BadRequest(
            "The Idempotency-Key must be 1..255 visible ASCII characters, such as a UUID.",
            code="idempotency_key_invalid",
        )
    return key


def idempotent_answer(
    c: GatewayContext,
    household_id: int,
    key: str,
    digest: str,
    work: Callable[[Session], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    """Run ``work`` once per Idempotency-Key (docs/gateway.md §1.5) and answer what it answered."""
    with c.in_flight.hold(household_id, key):
        answer = c.db.write(
            lambda s: run_idempotent(
                s, c.in_flight, household_id, key, digest, c.config.idempotency_ttl_seconds, work
            )
        )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


@router.get("/household", response_model=HouseholdOut, tags=["household"])
def household(dev: Device, c: Ctx) -> dict[str, Any]:
    return c.db.read(lambda s: hh.household_summary(s, dev.household_id, dev.dongle_id))


@router.get("/accounts", response_model=AccountList, tags=["household"])
def accounts(dev: Device, c: Ctx) -> dict[str, Any]:
    return {"accounts": c.db.read(lambda s: hh.list_accounts(s, dev.household_id))}


@router.post("/accounts", response_model=AccountOut, status_code=201, tags=["household"])
def bind(body: BindRequest, dev: Device, c: Ctx) -> dict[str, Any]:
    proof = Proof(holder_name=body.holder_name, bind_code=body.bind_code)
    proof.check()  # before the transaction: a malformed request costs no database work
    outcome = c.db.write(
        lambda s: bind_account(s, dev.household_id, body.utility, body.account_no, proof)
    )
    if isinstance(outcome, Refusal):
        raise outcome.error
    return outcome


@router.delete("/accounts/{account_id}", status_code=204, tags=["household"])
def unbind(account_id: AccountId, dev: Device, c: Ctx) -> Response:
    c.db.write(lambda s: hh.unbind_account(s, dev.household_id, account_id))
    return Response(status_code=204)


@router.get("/accounts/{account_id}/bills", response_model=BillList, tags=["household"])
def account_bills(account_id: AccountId, dev: Device, c: Ctx) -> dict[str, Any]:
    return {"bills": c.db.read(lambda s: hh.account_bills(s, dev.household_id, account_id))}


@router.get("/accounts/{account_id}/usage", response_model=UsageOut, tags=["household"])
def account_usage(account_id: AccountId, dev: Device, c: Ctx) -> dict[str, Any]:
    return c.db.read(lambda s: hh.account_usage(s, dev.household_id, account_id))


@router.get("/bills", response_model=BillList, tags=["household"])
def bills(
    dev: Device, c: Ctx, status: Literal["unpaid", "paid", "all"] = "unpaid"
) -> dict[str, Any]:
    return {"bills": c.db.read(lambda s: hh.household_bills(s, dev.household_id, status))}


@router.get("/payments", response_model=PaymentList, tags=["payments"])
def payments(
    dev: Device, c: Ctx, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> dict[str, Any]:
    return {"payments": c.db.read(lambda s: hh.list_payments(s, dev.household_id, limit))}


@router.get("/payments/{payment_id}", response_model=PaymentOut, tags=["payments"])
def payment(payment_id: PaymentId, dev: Device, c: Ctx) -> dict[str, Any]:
    return c.db.read(lambda s: hh.get_payment(s, dev.household_id, payment_id))


@router.post(
    "/payments",
    response_model=CreatedPayment,
    status_code=201,
    tags=["payments"],
    openapi_extra={"x-idempotency": "Stripe semantics, see docs/gateway.md"},
)
def create(
    body: CreatePaymentRequest,
    request: Request,
    dev: Device,
    c: Ctx,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    idempotency_key = require_idempotency_key(idempotency_key)
    fields = body.model_dump()
    digest = request_hash(request.url.path, fields)

    def work(s: Any) -> tuple[int, dict[str, Any]]:
        return 201, create_payment(
            s,
            dev.household_id,
            c.config.gateway_id,
            c.config.payment_ttl_seconds,
            body.bill_id,
            body.amount_fen,
            body.currency,
            body.funding_source,
        )

    return idempotent_answer(c, dev.household_id, idempotency_key, digest, work)


@router.post(
    "/payments/{payment_id}/crediting-check", response_model=CreditingCheckOut, tags=["payments"]
)
def crediting(payment_id: PaymentId, dev: Device, c: Ctx) -> dict[str, Any]:
    """查询到账: ask the utility now whether it wrote the bill off (docs/money.md)."""
    return crediting_check(c.db, dev.household_id, payment_id)


@router.post(
    "/payments/{payment_id}/authorize",
    response_model=AuthorizedPayment,
    tags=["payments"],
    responses={202: {"model": ProcessingPayment, "description": "the bank has not answered yet"}},
)
def authorize_payment(
    payment_id: PaymentId, body: AuthorizeRequest, c: Ctx
) -> dict[str, Any] | JSONResponse:
    auth = Authorization(
        dongle_id=body.dongle_id,
        key_rev=body.key_rev,
        counter=body.counter,
        signature=decode_b64(body.signature, "signature", 64, 64),
        display_text=body.display_text,
    )
    grace = c.config.signed_grace_seconds
    answer = c.db.write(
        lambda s: authorize(s, c.keys, c.config.gateway_id, payment_id, auth, signed_grace=grace)
    )
    return after_authorize(c, answer)  # a mandate payment: the bank is asked after the commit


@router.get("/funding-sources", response_model=FundingSourceList, tags=["funding"])
def funding_sources(dev: Device, c: Ctx) -> dict[str, Any]:
    # A write: the household's wallet source is made on first use.
    return c.db.write(lambda s: list_sources(s, dev.household_id))


@router.put("/funding-sources/default", response_model=FundingSourceList, tags=["funding"])
def default_funding_source(body: DefaultSourceRequest, dev: Device, c: Ctx) -> dict[str, Any]:
    return c.db.write(lambda s: set_default(s, dev.household_id, body.funding_source))
