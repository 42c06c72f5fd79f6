"""One-time set-up of a state directory, through the project's real tools.

Factory dongles (`tvpay-emulator factory`), the gateway (`tvpay-gateway init`, `demo-data`,
`staff add`) and the provisioning of the demo dongle (`tvpay-dongle provision`, which talks to the
running daemon and gateway). Each finished step is recorded in ``stack.json`` so a kept state
directory never repeats it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

from emulator.stack.layout import Layout
from emulator.stack.record import DemoHousehold, StackRecord, demo_pin, save_record
from emulator.stack.tls import TlsMaterial
from emulator.stack.tools import ToolError, run_tool

_STAFF_NAME = "emulator"


class SetupError(Exception):
    """A set-up step failed; the message says which one and where its log is."""


def _manufacturer_ca(output: str) -> str:
    """The manufacturer CA certificate path printed by `tvpay-emulator factory`."""
    match = re.search(r"^manufacturer_ca (\S+)$", output, re.MULTILINE)
    if match is None:
        raise SetupError(
            "tvpay-emulator factory did not say where the manufacturer CA is; see logs/setup.log"
        )
    return str(Path(match.group(1)).resolve())


def make_factory_dongles(layout: Layout, record: StackRecord, count: int) -> StackRecord:
    output = run_tool(
        "tvpay-emulator",
        [
            "factory",
            "--out",
            str(layout.dongles),
            "--count",
            str(count),
            "--seed",
            str(record.seed),
        ],
        log_path=layout.logs / "setup.log",
    )
    return replace(record, manufacturer_ca=_manufacturer_ca(output))


def _gateway(layout: Layout, *args: str) -> str:
    return run_tool(
        "tvpay-gateway",
        ["--state-dir", str(layout.gateway), *args],
        log_path=layout.logs / "setup.log",
    )


def init_gateway(layout: Layout, record: StackRecord, households: int) -> StackRecord:
    """`init`, `demo-data`, `staff add`; picks the first demo household for the demo dongle."""
    _gateway(layout, "init", "--manufacturer-ca", record.manufacturer_ca)
    lines = _gateway(
        layout, "demo-data", "--households", str(households), "--seed", str(record.seed)
    )
    found = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
    if not found:
        raise SetupError("tvpay-gateway demo-data printed no household; see logs/setup.log")
    token_out = _gateway(layout, "staff", "add", _STAFF_NAME)
    match = re.search(r"tvps_\S+", token_out)
    if match is None:
        raise SetupError("tvpay-gateway staff add printed no token; see logs/setup.log")
    fd = os.open(layout.staff_token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(match.group(0) + "\n")
    first = found[0]
    demo = DemoHousehold(
        household_no=str(first["household_no"]),
        name=str(first.get("name", "")),
        pin=demo_pin(record.seed),
        puk="",
        dongle_serial="",
    )
    return replace(
        record,
        demo=demo,
        households=tuple(str(h["household_no"]) for h in found),
        gateway_ready=True,
    )


def staff_args(
    layout: Layout, tls: TlsMaterial, gateway_url: str, record: StackRecord
) -> list[str]:
    """Global options of `tvpay-dongle` for this stack: daemon, gateway, its CA, token, factory CA."""
    return [
        "--gateway",
        gateway_url,
        "--ca-file",
        str(tls.ca_cert),
        "--socket",
        str(layout.daemon_socket),
        "--token-file",
        str(layout.staff_token),
        "--manufacturer-ca",
        record.manufacturer_ca,
    ]


def provision_demo_dongle(
    layout: Layout, tls: TlsMaterial, gateway_url: str, record: StackRecord, serial: str
) -> StackRecord:
    """`tvpay-dongle provision` for the demo household; keeps the PUK it shows once."""
    assert record.demo is not None
    try:
        output = run_tool(
            "tvpay-dongle",
            [
                *staff_args(layout, tls, gateway_url, record),
                "--json",
                "provision",
                "--account",
                record.demo.household_no,
                "--serial",
                serial,
                "--pin",
                record.demo.pin,
                "--wait",
                "10",
            ],
            log_path=layout.logs / "setup.log",
        )
        puk = str(json.loads(output.strip().splitlines()[-1]).get("puk", ""))
    except (ToolError, ValueError, IndexError, AttributeError) as exc:
        raise SetupError(f"provisioning the demo dongle {serial} failed: {exc}") from exc
    demo = replace(record.demo, dongle_serial=serial, puk=puk)
    return replace(record, demo=demo, demo_provisioned=True)


def remember(layout: Layout, record: StackRecord) -> StackRecord:
    save_record(layout.root, record)
    return record
