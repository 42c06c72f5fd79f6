"""Reaching the dongles through the daemon, and turning its errors into the tool's errors.

The daemon's and the dongle's typed errors already carry sentences a person can act on; here
they only get the exit code of their kind (docs/staff-guide.md, "Exit codes").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dongle.client import DaemonClient
from dongle.errors import AccessDenied, BadRequest, DaemonError, DaemonUnavailable
from dongle.staff.errors import DaemonProblem, DongleProblem, StaffError
from dongle.staff.log import log
from protocol.errors import DongleError, ProtocolError
from protocol.pin import KeyAgreementUnverified

CLIENT_NAME = "tvpay-dongle"


def connect(socket_path: str | None, timeout: float = 30.0) -> DaemonClient:
    """A client of the daemon at ``socket_path`` (None: the library's default path)."""
    with translated():
        return DaemonClient(socket_path, client_name=CLIENT_NAME, timeout=timeout)


def as_staff_error(exc: Exception) -> StaffError:
    """The tool's error for an error raised by the daemon client or the dongle."""
    if isinstance(exc, StaffError):
        return exc
    if isinstance(exc, DaemonUnavailable):
        return DaemonProblem(str(exc))
    if isinstance(exc, AccessDenied):
        return DaemonProblem(
            f"{exc}: ask an administrator to add your user to the daemon's staff group "
            "(see [access] staff_groups in dongled.toml)"
        )
    if isinstance(exc, KeyAgreementUnverified):
        log("key_agreement_unverified", level="warning", serial=exc.dongle_id, key_rev=exc.key_rev)
        return DongleProblem(
            f"{exc}: the daemon, or something between it and the dongle, answered with another "
            "key. Nothing secret was sent; run 'tvpay-dongle doctor' on this PC and report it"
        )
    if isinstance(exc, BadRequest):
        return DaemonProblem(f"the daemon refused the request ({exc}): check the versions match")
    if isinstance(exc, DaemonError | DongleError | ProtocolError):
        return DongleProblem(str(exc))
    if isinstance(exc, OSError):
        return DaemonProblem(
            f"lost the connection to the dongle daemon ({exc}): check that tvpay-dongled "
            "runs, then rerun"
        )
    return StaffError(str(exc))


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise daemon, dongle and socket errors as StaffError subclasses."""
    try:
        yield
    except (DaemonError, ProtocolError, OSError) as exc:
        raise as_staff_error(exc) from exc
