"""Typed errors of the staff tool, each with the exit code the command ends with.

Exit codes (docs/staff-guide.md, "Exit codes"):

    0  success
    1  the operation failed or was refused (batch: at least one row failed)
    2  usage: bad flags, bad input file, account or PIN format
    3  dongle problem: missing, busy, wrong state, not genuine, wrong PUK, unplugged
    4  gateway problem: unreachable, token refused, unknown account, request refused
    5  the dongle daemon is not reachable
    130 interrupted (Ctrl-C, or the TVPAY_STAFF_FAIL_AFTER test hook)
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DONGLE = 3
EXIT_GATEWAY = 4
EXIT_DAEMON = 5
EXIT_INTERRUPTED = 130


class StaffError(Exception):
    """Base of the tool's errors; the message is one sentence: what happened, what to do."""

    exit_code: ClassVar[int] = EXIT_FAILED
    kind: ClassVar[str] = "failed"


class UsageError(StaffError):
    exit_code = EXIT_USAGE
    kind = "usage"


class ConfigError(UsageError):
    kind = "config"


class DongleProblem(StaffError):
    exit_code = EXIT_DONGLE
    kind = "dongle"


class NotGenuine(DongleProblem):
    """The attestation did not verify against a trusted manufacturer CA."""

    kind = "not_genuine"


class AlreadyProvisioned(DongleProblem):
    kind = "already_provisioned"


class GatewayProblem(StaffError):
    exit_code = EXIT_GATEWAY
    kind = "gateway"


class GatewayUnreachable(GatewayProblem):
    kind = "gateway_unreachable"


class GatewayRefused(GatewayProblem):
    """The gateway answered a request with an error; ``code`` is its machine-readable code."""

    kind = "gateway_refused"

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class DaemonProblem(StaffError):
    exit_code = EXIT_DAEMON
    kind = "daemon"


class ResultFileError(StaffError):
    """The batch result file (which holds PUKs) cannot be written."""

    kind = "result_file"


class Interrupted(StaffError):
    exit_code = EXIT_INTERRUPTED
    kind = "interrupted"
