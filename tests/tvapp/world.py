"""The real system around the TV app, for its end-to-end tests.

``running_world(tmp)`` starts, each as a real process: a virtual-cable process with one factory
dongle (tests.fixtures.dongles), the gateway (``tvpay-gateway init``, demo data, ``serve`` on
a free port), the dongle daemon (``tvpay-dongled`` on a socket in ``tmp``, reaching the dongle
over the cable), and provisions the dongle for the demo household with the staff tool
(``tvpay-dongle provision``). Nothing is faked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.dongles import TEST_PIN, CableProcess, running_cable

BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0
EXTRA_ACCOUNT_NO = "8800123456"  # bound by the UI tests
SERVICE_ACCOUNT_NO = "7700123456"  # bound by the service-level tests


def extra_bills(holder_name: str) -> list[dict[str, Any]]:
    """Accounts in the household's name, not bound yet, each with eight unpaid bills."""
    return [
        {
            "biller_code": code,
            "biller_name": name,
            "utility": utility,
            "account_no": number,
            "holder_name": holder_name,
            "address": "杭州市拱墅区建设路45号",
            "bill_ref": f"{code}-{month}",
            "period": f"2026-{month:02d}",
            "amount_fen": 10000 + month * 123,
            "currency": "CNY",
            "due_date": f"2026-{month + 1:02d}-15",
            "usage_quantity": 100 + month * 7,
        }
        for code, name, utility, number in (
            ("TEST-POWER", "测试供电公司", "electricity", EXTRA_ACCOUNT_NO),
            ("TEST-WATER", "测试水务公司", "water", SERVICE_ACCOUNT_NO),
        )
        for month in range(3, 11)
    ]


@dataclass
class World:
    cable: CableProcess
    gateway_url: str
    gateway_state: Path
    daemon_socket: Path
    household: dict[str, Any]
    pin: str
    serial: str
    processes: dict[str, subprocess.Popen[str]]

    extra_account_no: str = EXTRA_ACCOUNT_NO


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} {args[1:4]} failed: {done.stderr[-2000:]}")
    return done.stdout


def _wait_for(predicate: Any, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up within {timeout} s")
        time.sleep(0.02)


def start_gateway(state: Path, *serve_args: str) -> tuple[subprocess.Popen[str], str]:
    """``tvpay-gateway serve`` on a free port (``serve_args``: e.g. its TLS files)."""
    gw = [str(BIN / "tvpay-gateway"), "--state-dir", str(state)]
    proc = subprocess.Popen(
        [*gw, "serve", "--host", "127.0.0.1", "--port", "0", *serve_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until it listens (or dies: empty line)
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"gateway did not start: {line!r}")
    return proc, line.strip().rsplit(" ", 1)[-1]


def start_daemon(socket: Path, cable: CableProcess) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            str(BIN / "tvpay-dongled"),
            "--socket",
            str(socket),
            "--usb-backend",
            cable.backend_spec,
            "--hotplug-source",
            f"{cable.hotplug_spec}?{cable.address}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    _wait_for(socket.exists, "tvpay-dongled")
    return proc


@contextmanager
def running_world(tmp: Path) -> Iterator[World]:
    with ExitStack() as stack:
        cable = stack.enter_context(running_cable(1, state_dir=tmp / "dongles"))
        state = tmp / "gateway"
        gw = [str(BIN / "tvpay-gateway"), "--state-dir", str(state)]
        _run(*gw, "init", "--manufacturer-ca", str(cable.manufacturer_ca))
        household = json.loads(
            _run(*gw, "demo-data", "--households", "1", "--seed", "7").splitlines()[0]
        )
        token = _run(*gw, "staff", "add", "tester").strip().split()[-1]
        bills = tmp / "extra-bills.json"
        bills.write_text(json.dumps(extra_bills(household["name"]), ensure_ascii=False))
        _run(*gw, "bills", "import", str(bills), "--format", "json")
        processes: dict[str, subprocess.Popen[str]] = {}

        def stop_all() -> None:
            for proc in processes.values():
                proc.terminate()
            for proc in processes.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

        stack.callback(stop_all)
        processes["gateway"], url = start_gateway(state)
        socket = tmp / "dongled.sock"
        processes["daemon"] = start_daemon(socket, cable)
        _run(
            str(BIN / "tvpay-dongle"),
            "--json",
            "--gateway",
            url,
            "--socket",
            str(socket),
            "--manufacturer-ca",
            str(cable.manufacturer_ca),
            "provision",
            "--account",
            household["household_no"],
            "--pin",
            TEST_PIN,
            "--wait",
            "10",
            env={"TVPAY_STAFF_TOKEN": token},
        )
        yield World(cable, url, state, socket, household, TEST_PIN, cable.serials[0], processes)
