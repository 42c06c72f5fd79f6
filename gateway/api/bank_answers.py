"""What the authorize route answers for a mandate payment: the bank is asked after the
authorization's commit, and its answer (or its silence) decides the HTTP answer."""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse

from gateway.bank_debits import Collector
from gateway.bankclient import BankClient
from gateway.context import GatewayContext
from gateway.errors import Conflict

log = logging.getLogger("tvpay.gateway.bank")


def collector(c: GatewayContext) -> Collector:
    if not c.config.bank_url:
        # 409, not 503: the gateway works, the request needs a setting the operator has not made.
        raise Conflict(
            "This gateway has no bank configured (bank_url in gateway.toml); mandates cannot "
            "be used until the operator sets it.",
            code="bank_not_configured",
        )
    bank = BankClient(c.config.bank_url.rstrip("/"), c.config.bank_timeout_seconds)
    return Collector(c.db, bank, c.keys, c.config.gateway_id)


def after_authorize(c: GatewayContext, answer: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    """200 with the receipt once the bank took the money; 202 ``processing`` while its answer is
    unknown; 409 ``bank_refused`` when it refused (nothing taken, the bill payable again)."""
    if answer["status"] == "processing":
        answer = collector(c).collect(answer["payment_id"])
    if answer["status"] == "processing":
        return JSONResponse(answer, status_code=202)
    if answer["status"] == "failed":
        raise Conflict(
            "The bank did not debit the card (it may hold too little): nothing was taken. Pay "
            "the bill again from the wallet, or after topping up the card.",
            code="bank_refused",
        )
    return answer
