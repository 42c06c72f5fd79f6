"""The bank's HTTP API (money: ``/debits``, ``/settlements``; set-up and faults: ``/control``).

Errors are ``{"error": {"code", "message"}}``; a refused debit answers 402
``{"status": "insufficient", …}`` as a bank's direct-debit interface does.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response

from emulator.bank.errors import BankError
from emulator.bank.faults import Faults, FaultSettings
from emulator.bank.models import NAME_PATTERN, AccountIn, DebitIn, FaultsIn
from emulator.bank.store import SETTLEMENT_COLUMNS, BankStore

KeyPath = Annotated[str, Path(pattern=NAME_PATTERN)]
DayPath = Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$")]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(store: BankStore, faults: Faults) -> FastAPI:
    app = FastAPI(title="TVPay bank simulator", version="1")
    # The emulator's web remote (another origin) shows the state and sets faults. The books are
    # play money and /control is open to any local process already: the page gains no new power.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Content-Type"],
    )

    @app.exception_handler(BankError)
    async def _bank_error(_request: Request, exc: BankError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:5]
        )
        return _error(422, "invalid_request", f"fix the request and send it again — {where}")

    @app.post("/debits")
    def debit(body: DebitIn) -> JSONResponse:
        faults.before_call()
        taken = store.debit(body.idempotency_key, body.bank_token, body.amount_fen, body.currency)
        faults.after_debit()
        return JSONResponse(taken.view(), status_code=200 if taken.status == "ok" else 402)

    @app.get("/debits/{key}")
    def get_debit(key: KeyPath) -> dict[str, Any]:
        faults.before_call()
        return store.get_debit(key).view()

    @app.post("/debits/{key}/reversal")
    def reverse(key: KeyPath) -> dict[str, Any]:
        faults.before_call()
        return store.reverse(key).view()

    @app.get("/settlements/{day}.csv")
    def settlement(day: DayPath) -> Response:
        faults.before_call()
        try:
            date.fromisoformat(day)
        except ValueError:
            return _error(422, "invalid_request", f"{day} is not a date; ask for YYYY-MM-DD.csv")
        out = io.StringIO()
        writer = csv.DictWriter(out, SETTLEMENT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(store.settlement(day))
        return Response(out.getvalue(), media_type="text/csv")

    @app.post("/control/accounts")
    def put_account(body: AccountIn) -> dict[str, Any]:
        return store.put_account(body.bank_token, body.balance_fen, body.currency)

    @app.post("/control/faults")
    def set_faults(body: FaultsIn) -> dict[str, Any]:
        faults.set(FaultSettings(**body.model_dump()))
        return faults.view()

    @app.delete("/control/faults")
    def clear_faults() -> dict[str, Any]:
        faults.clear()
        return faults.view()

    @app.get("/control/state")
    def state() -> dict[str, Any]:
        return {**store.state(), "faults": faults.view()}

    return app
