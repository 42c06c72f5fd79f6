"""The utility simulator's HTTP API (docs/emulator.md, "The utility simulator").

Errors are ``{"error": {"code", "message"}}``; nothing a caller sends produces a traceback.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from emulator.utility.clock import Clock, ClockFileError
from emulator.utility.faults import Faults, FaultSettings
from emulator.utility.prepaid import PrepaidAccount, Reading
from emulator.utility.seed import ACCOUNT_NO, Seed, SeedRejected, apply_seed
from emulator.utility.signature import HEADER, SignatureRejected, check_signature
from emulator.utility.store import STATEMENT_COLUMNS, Notification, UtilityStore

MAX_BODY = 16 * 1024
_HUGE = 4 * 1024 * 1024
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PaymentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
AccountNo = Annotated[str, Path(pattern=ACCOUNT_NO)]


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    meter_no: str = Field(min_length=1, max_length=32)
    meter_kind: Literal["remote", "card", "token"]
    energy_wh: StrictInt = Field(ge=0, le=10**12)


class WriteoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    payment_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    biller: str = Field(min_length=1, max_length=64)
    account_no: str = Field(min_length=1, max_length=32)
    bill_ref: str = Field(min_length=1, max_length=64)
    amount_fen: StrictInt = Field(gt=0, le=10**12)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    paid_at: str = Field(min_length=1, max_length=32)
    kind: Literal["bill", "purchase"] | None = None  # None: a bill, as before purchases existed
    purchase: PurchaseIn | None = None

    @model_validator(mode="after")
    def purchase_iff_kind(self) -> Self:
        if (self.kind == "purchase") != (self.purchase is not None):
            raise ValueError('"purchase" is given exactly when "kind" is "purchase"')
        return self

    def notification(self) -> Notification:
        body = self.model_dump(exclude={"kind", "purchase"})
        meter_kind = self.purchase.meter_kind if self.purchase else None
        return Notification(**body, meter_kind=meter_kind)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meter_answer(account: PrepaidAccount, reading: Reading, now: int) -> dict[str, Any]:
    """``GET /meters/{account_no}``: the balance now and the last settled days, oldest first."""
    return {
        "account_no": account.account_no,
        "balance_fen": reading.balance_fen,
        "currency": account.currency,
        "as_of": iso(now),
        "usage": [
            {"day": u.day.isoformat(), "used_wh": u.used_wh, "spent_fen": u.spent_fen}
            for u in reading.usage
        ],
    }


def create_app(
    store: UtilityStore, faults: Faults, clock: Clock, gateway_key: ec.EllipticCurvePublicKey
) -> FastAPI:
    app = FastAPI(title="TVPay utility simulator", docs_url=None, redoc_url=None)
    # The emulator's web remote (another origin) shows the state and sets faults. Write-offs
    # need the gateway's signature, so a page can read and set faults but never write off.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Content-Type"],
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(ClockFileError)
    async def bad_clock(_request: Request, exc: ClockFileError) -> JSONResponse:
        return error(500, "clock_file_invalid", str(exc))

    def handle_writeoff(body: bytes, signature: str | None) -> Response:
        settings = faults.settings
        if settings.down:
            return error(503, "utility_down", "the utility's billing system is down")
        try:
            check_signature(gateway_key, signature, body)
        except SignatureRejected as exc:
            return error(401, "signature_invalid", str(exc))
        try:
            request = WriteoffRequest.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return error(422, "invalid_request", f"{where}: {first['msg']}")
        if settings.slow:
            faults.hold(settings.slow)
        forced = None if store.find(request.payment_id) else faults.take_rejection()
        # The settings as the notification arrived: a fault cleared while it was held (slow)
        # still shapes what this utility does with it.
        writeoff = store.write_off(
            request.notification(), clock.now(), forced, duplicate=bool(settings.ack_twice)
        )
        if settings.timeout_after_writeoff:
            faults.hold(None)
        if settings.hostile == "garbage_json":
            return Response(
                b'{"status": "credited", "utility_ref": ', media_type="application/json"
            )
        if settings.hostile == "huge_body":
            return Response(b" " * _HUGE, media_type="application/json")
        answer = writeoff.answer()
        if settings.hostile == "wrong_payment_id":
            answer["payment_id"] = "pay_" + "0" * 32
        return JSONResponse(answer)

    @app.post("/writeoffs")
    async def writeoff(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return error(413, "body_too_large", f"a notification is at most {MAX_BODY} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return error(413, "body_too_large", f"a notification is at most {MAX_BODY} bytes")
        return await run_in_threadpool(handle_writeoff, bytes(body), request.headers.get(HEADER))

    @app.get("/writeoffs/{payment_id}")
    def get_writeoff(payment_id: PaymentId) -> Response:
        if faults.settings.down:
            return error(503, "utility_down", "the utility's billing system is down")
        found = store.find(payment_id)
        if found is None:
            return JSONResponse({"payment_id": payment_id, "status": "unknown"}, status_code=404)
        return JSONResponse(found.answer())

    @app.get("/statements/{name}")
    def statement(name: str) -> Response:
        date = name.removesuffix(".csv")
        if not name.endswith(".csv") or not _DATE.match(date):
            return error(404, "statement_not_found", "statements are /statements/YYYY-MM-DD.csv")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(STATEMENT_COLUMNS)
        writer.writerows(store.statement(date))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")

    @app.get("/meters/{account_no}")
    def meter(account_no: AccountNo) -> Response:
        settings = faults.settings
        if settings.down:
            return error(503, "utility_down", "the utility's billing system is down")
        if settings.slow:
            faults.hold(settings.slow)
        now = clock.now()
        found = store.prepaid(account_no, now)
        status = store.account_status(account_no)
        if found is None:
            if status is None:
                return error(404, "account_unknown", f"no account {account_no} at this utility")
            return error(404, "not_prepaid", f"account {account_no} is not a prepaid account")
        if status == "closed":
            return error(410, "account_closed", f"account {account_no} is closed")
        return JSONResponse(meter_answer(*found, now))

    @app.post("/control/accounts/{account_no}/close")
    def close_account(account_no: AccountNo) -> dict[str, str]:
        store.set_account(account_no, "closed")
        return {"account_no": account_no, "status": "closed"}

    @app.post("/control/faults")
    def set_faults(change: FaultSettings) -> dict[str, Any]:
        faults.update(change)
        return state()

    @app.delete("/control/faults")
    def clear_faults() -> dict[str, Any]:
        faults.clear()
        return state()

    @app.get("/control/state")
    def state() -> dict[str, Any]:
        now = clock.now()
        return {
            **faults.state(),
            "writeoffs": store.counts(),
            "duplicates": store.duplicates(),
            "prepaid": store.prepaid_balances(now),
            "now": now,
        }

    @app.post("/control/seed")
    def seed(body: Seed) -> Response:
        try:
            apply_seed(store, body, clock.now())
        except SeedRejected as exc:
            return error(422, "seed_invalid", str(exc))
        counts = {"accounts": len(body.accounts), "bills": len(body.bills)}
        return JSONResponse({**counts, "prepaid": len(body.prepaid)})

    return app
