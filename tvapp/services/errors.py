"""Errors of the app's services, sorted by what the user can do about them."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the service layer's errors."""


class GatewayError(ServiceError):
    """Base of the gateway client's errors."""


class GatewayUnavailable(GatewayError):
    """The gateway cannot be reached (network down, timeout, 5xx): retry later.

    ``code`` is the gateway's own error code when it answered 5xx with one (e.g. the utility
    behind it did not answer), else ""."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class MalformedAnswer(GatewayError):
    """The gateway answered something its API does not document."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the payment gateway sent an unexpected answer ({what}); try again later")


class GatewayRefused(GatewayError):
    """The gateway answered with a documented error: ``code`` is stable, ``message`` for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class SessionExpired(GatewayRefused):
    """The device session token is missing or expired: open a new device session."""
