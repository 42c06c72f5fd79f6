"""The money side of the stack: the bank simulator (card accounts the gateway debits under a
mandate), the utility simulator (its own process and database), the dispatcher that writes paid
bills off at it, and the billers pointed at it.

The bank's port changes at each start, so the gateway and the dispatcher learn its URL from the
environment every time they start (``TVPAY_GATEWAY_BANK_URL``), never from a file left behind.

The simulator learns the gateway's receipt key from the running gateway (over the stack's TLS),
so it can check the signature on every notification, as a real utility would."""

from __future__ import annotations

import sys

from emulator.stack.layout import Layout
from emulator.stack.process import ProcessSpec
from emulator.stack.tls import TlsMaterial
from emulator.stack.tools import run_tool, tool_path

BANK_READY = r"bank listening on (?P<url>http://[0-9.]+:\d+)"
UTILITY_READY = r"utility listening on (?P<url>http://[0-9.]+:\d+)"
DISPATCHER_READY = r"dispatcher running\b"


def bank_env(bank_url: str) -> dict[str, str]:
    """What tells a gateway process (server, dispatcher, CLI) where this run's bank listens."""
    return {"TVPAY_GATEWAY_BANK_URL": bank_url}


def bank_spec(layout: Layout) -> ProcessSpec:
    return ProcessSpec(
        name="bank",
        argv=(
            sys.executable,
            "-m",
            "emulator.bank",
            "serve",
            "--state-dir",
            str(layout.bank),
            "--listen",
            "127.0.0.1:0",
        ),
        ready_pattern=BANK_READY,
    )


def utility_spec(layout: Layout, tls: TlsMaterial, gateway_url: str) -> ProcessSpec:
    return ProcessSpec(
        name="utility",
        argv=(
            sys.executable,
            "-m",
            "emulator.utility",
            "serve",
            "--state-dir",
            str(layout.utility),
            "--listen",
            "127.0.0.1:0",
            "--gateway",
            gateway_url,
            "--ca-file",
            str(tls.ca_cert),
        ),
        ready_pattern=UTILITY_READY,
    )


def dispatcher_spec(layout: Layout, bank_url: str) -> ProcessSpec:
    return ProcessSpec(
        name="dispatch",
        argv=(tool_path("tvpay-gateway"), "--state-dir", str(layout.gateway), "dispatch"),
        env=bank_env(bank_url),
        ready_pattern=DISPATCHER_READY,
    )


def connect_billers(layout: Layout, utility_url: str) -> None:
    """Send every demo biller's write-offs to the simulator (its port changes at each start)."""
    run_tool(
        "tvpay-gateway",
        ["--state-dir", str(layout.gateway), "billers", "notify-url", utility_url, "--all"],
        log_path=layout.logs / "setup.log",
    )
