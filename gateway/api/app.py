"""The FastAPI application: routes, the error envelope, and the request body size limit."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api import (
    routes_cards,
    routes_household,
    routes_prepaid,
    routes_public,
    routes_shop,
    routes_staff,
)
from gateway.context import GatewayContext
from gateway.errors import APIError

log = logging.getLogger("tvpay.gateway")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes (413) before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            # FastAPI passes an HTTPException raised while reading the body through unchanged.
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise StarletteHTTPException(413, detail=self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"The request body is over {self.limit} bytes; send less."

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, "body_too_large", self._message())(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "malformed_json", "The request body is not valid JSON; send a JSON object."
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return 422, "invalid_request", "Fix the request and send it again — " + "; ".join(parts)


def create_app(ctx: GatewayContext) -> FastAPI:
    app = FastAPI(
        title="TVPay gateway",
        version="1",
        description="Bills, dongle-signed payments and the dongle registry. See docs/gateway.md.",
    )
    app.state.ctx = ctx
    for module in (
        routes_public,
        routes_household,
        routes_staff,
        routes_cards,
        routes_prepaid,
        routes_shop,
    ):
        app.include_router(module.router)

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError) -> JSONResponse:
        log.info("event=api_error code=%s status=%d", exc.code, exc.status)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(*_validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "bad_request")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("event=internal_error path=%s", request.url.path)
        return error_response(500, "internal_error", "The gateway failed; the operator is told.")

    app.add_middleware(BodyLimit, limit=ctx.config.max_body_bytes)
    return app
