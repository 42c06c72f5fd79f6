"""Typed errors of the dongle daemon and its client library.

Each error has a wire ``code`` (docs/daemon-api.md §4): the daemon answers a failed request with
that code and the client raises the matching class again, so callers catch the same types
whether the failure happened in their process or in the daemon. A dongle's own non-OK statuses
travel as code ``"dongle"`` and are raised as ``protocol.errors.DongleError`` subclasses
(``dongle_status_error``), the card slot's as ``CardAbsent`` and ``CardChanged``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dongle.model import LeaseHolder
from protocol.errors import DongleError, dongle_error
from protocol.messages import Status


class DaemonError(Exception):
    """Base of every error of the daemon and its client library."""

    code: ClassVar[str] = "internal"

    def details(self) -> dict[str, Any]:
        """Extra keys sent with the error on the wire (none by default)."""
        return {}


class DaemonUnavailable(DaemonError):
    code = "unavailable"

    def __init__(self, path: str, reason: str = "") -> None:
        self.path = path
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"the dongle daemon is not running at {path}{why}: "
            "start it with 'systemctl start tvpay-dongled'"
        )


class AccessDenied(DaemonError):
    code = "access_denied"


class BadRequest(DaemonError):
    """The request (or a message on the socket) is malformed; the daemon closes the connection
    after answering a framing error, so a client that sees this should fix its code."""

    code = "bad_request"


class _OverLimit(DaemonError):
    """An error about a limit of the daemon; ``limit`` travels with it so a client can adapt."""

    def __init__(self, message: str, limit: int = 0) -> None:
        self.limit = limit
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        return {"limit": self.limit}


class MessageTooLarge(_OverLimit, BadRequest):
    """A socket message exceeds the daemon's message limit, or a request's parameters would make
    a dongle command larger than one USB frame. ``limit`` is the size in bytes not to exceed."""

    code = "too_large"


class MessageTimeout(BadRequest):
    """The client began a message and did not finish it in time; the daemon closed the
    connection (a client that stalls mid-message must not hold a connection slot or a lease)."""

    code = "message_timeout"


class TooManyConnections(_OverLimit):
    """The daemon refused a connection: the caller's user, or all users together, already have
    the most connections the daemon allows, or it is out of file descriptors. ``limit`` is the
    cap that was reached (0 when out of file descriptors)."""

    code = "too_many_connections"


class NoDongle(DaemonError):
    code = "no_dongle"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "no payment dongle is plugged in: insert the payment dongle")


class SeveralDongles(DaemonError):
    code = "several_dongles"

    def __init__(self, serials: list[str]) -> None:
        self.serials = serials
        super().__init__(
            f"several payment dongles are plugged in ({', '.join(serials)}): "
            "name one with its serial number"
        )

    def details(self) -> dict[str, Any]:
        return {"serials": list(self.serials)}


class DongleBusy(DaemonError):
    code = "busy"

    def __init__(self, serial: str, holder: LeaseHolder | None) -> None:
        self.serial = serial
        self.holder = holder
        who = holder.describe() if holder else "another client"
        super().__init__(f"dongle {serial} is busy, held by {who}: try again when it is released")

    def details(self) -> dict[str, Any]:
        return {"serial": self.serial, "holder": self.holder.to_wire() if self.holder else None}


class DongleRemoved(DaemonError):
    code = "dongle_removed"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "the payment dongle was unplugged during the request: plug it back in"
        )


class DongleTimeout(DaemonError):
    code = "dongle_timeout"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "the payment dongle did not answer in time: unplug it and plug it back in"
        )


class DongleLinkError(DaemonError):
    code = "link_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message or "the payment dongle's answers were garbled: unplug it and plug it back in"
        )


class LeaseLost(DaemonError):
    """The caller's lease was taken away (idle too long, or by a higher-priority client)."""

    code = "lease_lost"


class UnsupportedVersion(DaemonError):
    code = "unsupported_version"


class CardAbsent(DongleError):
    """No card is in the dongle's card slot, or it was taken out during the command (then the
    command may have reached the card: read the card again before going on)."""

    advice = "insert the purchase card into the payment dongle's card slot and try again"


class CardChanged(DongleError):
    """The card in the slot is not the one the caller read: it was swapped, or taken out and
    put back (its session with the card is gone). Nothing was sent to the card."""

    advice = "the purchase card was taken out since it was read: leave it in and start again"


_CARD_ERRORS: dict[int, type[DongleError]] = {
    Status.CARD_ABSENT: CardAbsent,
    Status.CARD_CHANGED: CardChanged,
}


def dongle_status_error(status: int, body: dict[str, Any] | None = None) -> DongleError:
    """The typed exception for a non-OK status a dongle answered, the card slot's included."""
    kind = _CARD_ERRORS.get(status)
    return kind(status, body=body) if kind is not None else dongle_error(status, body)


_BY_CODE: dict[str, type[DaemonError]] = {
    cls.code: cls
    for cls in (
        DaemonError,
        AccessDenied,
        BadRequest,
        MessageTimeout,
        LeaseLost,
        UnsupportedVersion,
    )
}


def error_to_wire(exc: DaemonError) -> dict[str, Any]:
    """The ``error`` map of a failed reply (docs/daemon-api.md §4)."""
    return {"code": exc.code, "message": str(exc), **exc.details()}


def error_from_wire(error: Any) -> DaemonError:
    """Rebuild the typed error a daemon reply describes (``dongle`` statuses excepted)."""
    if not isinstance(error, dict):
        return BadRequest("the daemon sent an error without details")
    code = error.get("code")
    message = str(error.get("message", ""))
    if code == "busy":
        return DongleBusy(str(error.get("serial", "?")), LeaseHolder.from_wire(error.get("holder")))
    if code == "no_dongle":
        return NoDongle(message)
    if code == "several_dongles":
        serials = error.get("serials")
        return SeveralDongles([str(s) for s in serials] if isinstance(serials, list) else [])
    if code == "dongle_removed":
        return DongleRemoved(message)
    if code == "dongle_timeout":
        return DongleTimeout(message)
    if code == "link_error":
        return DongleLinkError(message)
    if code in ("too_large", "too_many_connections"):
        limit = error.get("limit")
        kind = MessageTooLarge if code == "too_large" else TooManyConnections
        return kind(message, limit if isinstance(limit, int) else 0)
    return _BY_CODE.get(code if isinstance(code, str) else "", DaemonError)(message)
