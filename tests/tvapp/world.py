"""The real system around the TV app, for its end-to-end tests.

``running_world(tmp)`` starts, each as a real process: a virtual-cable process with two factory
dongles (tests.fixtures.dongles), the gateway (``tvpay-gateway init``, demo data for two
households, ``serve`` on a free port), the dongle daemon (``tvpay-dongled`` on a socket in
``tmp``, reaching the dongles over the cable), and provisions each dongle for its household with
the staff tool (``tvpay-dongle provision``). The second household's dongle is then unplugged: the
box starts with the first one, and a test swaps them. Nothing is faked.
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
SPOUSE_ACCOUNT_NO = "6600123456"  # held by a spouse: bound by the bill's bind code
SPOUSE_BIND_CODE = "520131"
JOURNAL_ACCOUNT_NO = "5500123456"  # bound by the journal damage tests
BANK_CARD_TOKEN = "world-card"  # a card at the bank simulator; its mandate is bound by a test


def extra_bills(holder_name: str) -> list[dict[str, Any]]:
    """Accounts not bound yet, each with eight unpaid bills: three in the household's name
    without a bind code, one held by a spouse with the bind code printed on its bills."""
    return [
        {
            "biller_code": code,
            "biller_name": name,
            "utility": utility,
            "account_no": number,
            "holder_name": "李娜" if number == SPOUSE_ACCOUNT_NO else holder_name,
            "address": "杭州市拱墅区建设路45号",
            "bill_ref": f"{code}-{month}",
            "period": f"2026-{month:02d}",
            "amount_fen": 10000 + month * 123,
            "currency": "CNY",
            "due_date": f"2026-{month + 1:02d}-15",
            "usage_quantity": 100 + month * 7,
            **({"bind_code": SPOUSE_BIND_CODE} if number == SPOUSE_ACCOUNT_NO else {}),
        }
        for code, name, utility, number in (
            ("TEST-POWER", "测试供电公司", "electricity", EXTRA_ACCOUNT_NO),
            ("TEST-WATER", "测试水务公司", "water", SERVICE_ACCOUNT_NO),
            ("TEST-GAS", "测试燃气公司", "gas", SPOUSE_ACCOUNT_NO),
            ("TEST-TV", "测试有线电视", "tv", JOURNAL_ACCOUNT_NO),
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
    puk: str
    staff_token: str
    other_household: dict[str, Any]  # owns the second dongle, unplugged at the start
    other_serial: str

    extra_account_no: str = EXTRA_ACCOUNT_NO
    bank_url: str = ""  # the bank simulator the gateway debits mandates at

    def staff(self, *args: str, stdin: str = "") -> dict[str, Any]:
        """Run the staff tool against this world (``--json``); its JSON answer."""
        done = subprocess.run(
            [
                str(BIN / "tvpay-dongle"),
                "--json",
                "--gateway",
                self.gateway_url,
                "--socket",
                str(self.daemon_socket),
                "--manufacturer-ca",
                str(self.cable.manufacturer_ca),
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TVPAY_STAFF_TOKEN": self.staff_token},
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"tvpay-dongle {args[:2]} failed: {done.stdout} {done.stderr[-2000:]}"
            )
        return json.loads(done.stdout.splitlines()[-1])

    def provision(self, serial: str, household_no: str) -> str:
        """Make ``serial`` the payment key of ``household_no``; its PUK."""
        answer = self.staff(
            "provision",
            "--serial",
            serial,
            "--account",
            household_no,
            "--pin",
            self.pin,
            "--wait",
            "10",
        )
        return answer["puk"]

    def gateway_tool(self, *args: str) -> str:
        """Run ``tvpay-gateway`` on this world's gateway state (as its operator would); stdout."""
        return _run(
            str(BIN / "tvpay-gateway"),
            "--state-dir",
            str(self.gateway_state),
            *args,
            env={"TVPAY_GATEWAY_BANK_URL": self.bank_url},
        )

    def start_utility(self, directory: Path) -> str:
        """The utility simulator as its own process, every biller's write-offs sent to it; its
        URL. Stopped with the world."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulator.utility",
                "serve",
                "--state-dir",
                str(directory),
                "--listen",
                "127.0.0.1:0",
                "--gateway",
                self.gateway_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.processes["utility"] = proc
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it listens (or dies: empty line)
        if "listening on" not in line:
            raise RuntimeError(f"utility simulator did not start: {line!r}")
        url = line.strip().rsplit(" ", 1)[-1]
        self.gateway_tool("billers", "notify-url", url, "--all")
        return url

    def daemon_sees(self, serials: set[str]) -> None:
        """Wait until the daemon has exactly ``serials`` plugged in."""
        from dongle.client import DaemonClient

        client = DaemonClient(str(self.daemon_socket), client_name="tvapp-tests")
        try:
            _wait_for(
                lambda: {d.serial for d in client.devices()} == serials,
                f"the daemon seeing {sorted(serials)}",
            )
        finally:
            client.close()


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


def start_gateway(
    state: Path, *serve_args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """``tvpay-gateway serve`` on a free port (``serve_args``: e.g. its TLS files)."""
    gw = [str(BIN / "tvpay-gateway"), "--state-dir", str(state)]
    proc = subprocess.Popen(
        [*gw, "serve", "--host", "127.0.0.1", "--port", "0", *serve_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until it listens (or dies: empty line)
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"gateway did not start: {line!r}")
    return proc, line.strip().rsplit(" ", 1)[-1]


def start_bank(directory: Path) -> tuple[subprocess.Popen[str], str]:
    """The bank simulator (its own process) with one card account, ``BANK_CARD_TOKEN``."""
    directory.mkdir(parents=True, exist_ok=True)
    seed = directory / "seed.json"
    card = {"bank_token": BANK_CARD_TOKEN, "balance_fen": 10_000_000, "currency": "CNY"}
    seed.write_text(json.dumps({"accounts": [card]}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator.bank",
            "serve",
            "--state-dir",
            str(directory),
            "--listen",
            "127.0.0.1:0",
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until it listens (or dies: empty line)
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"bank simulator did not start: {line!r}")
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
        cable = stack.enter_context(running_cable(2, state_dir=tmp / "dongles"))
        state = tmp / "gateway"
        gw = [str(BIN / "tvpay-gateway"), "--state-dir", str(state)]
        _run(*gw, "init", "--manufacturer-ca", str(cable.manufacturer_ca))
        household, other = (
            json.loads(line)
            for line in _run(*gw, "demo-data", "--households", "2", "--seed", "7").splitlines()
        )
        token = _run(*gw, "staff", "add", "tester").strip().split()[-1]
        bills = tmp / "extra-bills.json"
        extra = extra_bills(household["name"])
        bills.write_text(json.dumps(extra, ensure_ascii=False))
        _run(*gw, "bills", "import", str(bills), "--format", "json")
        # The household pays the extra bills from its wallet, as it would after a top-up.
        total = str(sum(bill["amount_fen"] for bill in extra))
        number = household["household_no"]
        _run(
            *gw,
            "wallet",
            "credit",
            "--household",
            number,
            "--amount-fen",
            total,
            "--reference",
            "world-extra-bills",
        )
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
        processes["bank"], bank_url = start_bank(tmp / "bank")
        processes["gateway"], url = start_gateway(state, env={"TVPAY_GATEWAY_BANK_URL": bank_url})
        socket = tmp / "dongled.sock"
        processes["daemon"] = start_daemon(socket, cable)
        serial, other_serial = cable.serials
        world = World(
            cable,
            url,
            state,
            socket,
            household,
            TEST_PIN,
            serial,
            processes,
            puk="",
            staff_token=token,
            other_household=other,
            other_serial=other_serial,
            bank_url=bank_url,
        )
        world.puk = world.provision(serial, household["household_no"])
        world.provision(other_serial, other["household_no"])
        cable.control().unplug(other_serial)
        world.daemon_sees({serial})
        yield world
