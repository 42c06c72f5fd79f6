"""One-time set-up of a state directory, through the project's real tools.

Factory dongles (`tvpay-emulator factory`), the gateway (`tvpay-gateway init`, `demo-data`,
`staff add`, and an electricity bill due for the demo household with `bills import`) and the provisioning of the demo dongle (`tvpay-dongle provision`, which talks to the
running daemon and gateway). Each finished step is recorded in ``stack.json`` so a kept state
directory never repeats it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import random
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

from emulator.files import write_private
from emulator.stack.layout import Layout
from emulator.stack.record import DemoHousehold, StackRecord, demo_pin, save_record
from emulator.stack.tls import TlsMaterial
from emulator.stack.tools import ToolError, run_tool

_STAFF_NAME = "emulator"
# Electricity bills issued for the demo household: one for each shipped scenario that pays.
DEMO_BILLS_DUE = 2


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
    write_private(layout.staff_token, (match.group(0) + "\n").encode("ascii"))
    first = found[0]
    import_electricity_bills(layout, first, random.Random(record.seed))
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


def _biller_code(layout: Layout, biller_name: str) -> str:
    """The code of the electricity biller named ``biller_name``: `demo-data` prints only names."""
    with contextlib.closing(
        sqlite3.connect(f"file:{layout.gateway_db}?mode=ro", uri=True, timeout=10)
    ) as db:
        row = db.execute(
            "SELECT code FROM billers WHERE name = ? AND utility = 'electricity'", (biller_name,)
        ).fetchone()
    if row is None:
        raise SetupError(f"the gateway has no electricity biller named {biller_name!r}")
    return str(row[0])


def import_electricity_bills(layout: Layout, household: dict[str, Any], rng: random.Random) -> None:
    """Give the demo household electricity bills due, whatever the seed made of its history.

    `demo-data` leaves zero to two of each account's latest bills unpaid; the demo (and
    both shipped scenarios) pay an electricity bill, so the bills of the coming months are issued
    in advance through `tvpay-gateway bills import`, as a utility would."""
    account = next(
        (a for a in household.get("accounts", []) if a.get("utility") == "electricity"), None
    )
    if account is None or not account.get("bound"):
        raise SetupError("the demo household has no bound electricity account; see setup.log")
    code = _biller_code(layout, str(account["biller"]))
    bills = []
    period = datetime.date.today().replace(day=1)
    for _ in range(DEMO_BILLS_DUE):
        period = (period + datetime.timedelta(days=32)).replace(day=1)
        bills.append(
            {
                "biller_code": code,
                "biller_name": account["biller"],
                "utility": "electricity",
                "account_no": account["account_no"],
                "holder_name": account["holder_name"],
                "address": household["address"],
                "bill_ref": f"{code}-{period:%Y-%m}",
                "period": f"{period:%Y-%m}",
                "amount_fen": rng.randint(8_000, 30_000),
                "currency": "CNY",
                "due_date": (period + datetime.timedelta(days=45)).isoformat(),
            }
        )
    path = layout.root / "demo-bills.json"
    path.write_text(json.dumps({"bills": bills}, ensure_ascii=False), encoding="utf-8")
    _gateway(layout, "bills", "import", "--format", "json", str(path))


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
