"""Per-request helpers: the process context, bearer tokens, the error responses routes declare."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.schemas import ErrorBody
from gateway.context import GatewayContext
from gateway.sessions import DeviceIdentity, authenticate_device
from gateway.staff import StaffMember, authenticate_staff

_bearer = HTTPBearer(auto_error=False)

# Every route may answer these; declaring them keeps /openapi.json honest for clients and fuzzers.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 405, 409, 410, 413, 422, 429, 503)
}


def ctx(request: Request) -> GatewayContext:
    return request.app.state.ctx


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials else None


def device(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> DeviceIdentity:
    token = _token(credentials)
    return ctx(request).db.read(lambda s: authenticate_device(s, token))


def staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StaffMember:
    token = _token(credentials)
    return ctx(request).db.read(lambda s: authenticate_staff(s, token))


Device = Annotated[DeviceIdentity, Depends(device)]
StaffAuth = Annotated[StaffMember, Depends(staff)]
Ctx = Annotated[GatewayContext, Depends(ctx)]
