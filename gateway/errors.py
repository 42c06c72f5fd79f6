"""Typed errors of the gateway. Each maps to one HTTP status and a stable machine-readable code.

Messages are sentences for a person: they say what went wrong and what to do next.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every gateway error."""


class ConfigError(GatewayError):
    """The gateway's configuration or state directory is missing or inconsistent."""


class ImportFileError(GatewayError):
    """A bills file could not be imported; nothing was written."""


class APIError(GatewayError):
    """An error answered to an API client as ``{"error": {"code", "message"}}``, with
    ``"details"`` when the error carries numbers a client acts on (so it need not parse words)."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, int | str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.details = details
        if code is not None:
            self.code = code

    def body(self) -> dict[str, dict[str, object]]:
        """The JSON body answered for this error."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(APIError):
    status = 400


class Unauthenticated(APIError):
    status = 401
    code = "unauthenticated"


class Forbidden(APIError):
    status = 403
    code = "forbidden"


class NotFound(APIError):
    status = 404
    code = "not_found"


class Conflict(APIError):
    status = 409
    code = "conflict"


class Gone(APIError):
    status = 410
    code = "gone"


class Unprocessable(APIError):
    status = 422
    code = "invalid_request"


class TooManyRequests(APIError):
    status = 429
    code = "too_many_attempts"


class ServiceUnavailable(APIError):
    status = 503
    code = "database_unavailable"


class StateDirError(ConfigError):
    """The state directory cannot be created, read or written."""


class DatabaseUnreachable(GatewayError):
    """The database server cannot be reached or refuses the connection."""
