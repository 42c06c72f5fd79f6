"""Running the whole emulated box for end-to-end tests, and reading the gateway's ledger.

``start_stack(state_dir, ...)`` runs ``tvpay-emulator up --headless --automation-port 0`` as a
real subprocess and returns a ``RunningStack``: the automation client, where everything runs, and
helpers to run the staff tool against the same daemon and gateway and to open the gateway's SQLite
database read-only. ``Ledger`` snapshots paid bills and successful payments so a test can check
"exactly one payment per paid bill, none lost".
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from emulator.automation.client import AutomationClient

READY_PREFIX = "automation API listening on "
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
# requests lets these override an explicit CA file; the stack trusts only its own CA.
_UNTRUSTED_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNTRUSTED_ENV}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return {**env, **extra}


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    client: AutomationClient
    url: str
    where: dict[str, Any]
    log_path: Path

    @property
    def pin(self) -> str:
        return str(self.where["demo"]["pin"])

    @property
    def database(self) -> Path:
        return Path(self.where["gateway"]["database"])

    def db(self) -> sqlite3.Connection:
        """The gateway's SQLite database, opened read-only (the gateway keeps writing to it)."""
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)

    def staff(
        self, command: Sequence[str], *options: str, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """Run `tvpay-dongle COMMAND... --json OPTIONS` against this stack's daemon and gateway."""
        where = self.where
        flags = [
            "--json",
            "--gateway",
            where["gateway"]["url"],
            "--ca-file",
            where["tls_ca"],
            "--socket",
            where["daemon"]["socket"],
            "--token-file",
            where["staff_token_file"],
            "--manufacturer-ca",
            where["manufacturer_ca"],
        ]
        return subprocess.run(
            [tool("tvpay-dongle"), *command, *flags, *options],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
            check=False,
        )


def _pump(stream: TextIO, log: TextIO, found: list[str], ready: threading.Event) -> None:
    for line in stream:
        log.write(line)
        log.flush()
        if line.startswith(READY_PREFIX) and not ready.is_set():
            found.append(line[len(READY_PREFIX) :].strip())
            ready.set()
    ready.set()


@contextmanager
def start_stack(
    state_dir: Path, *, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[RunningStack]:
    """Start a stack, wait for the TV's home screen, stop it (SIGTERM) at the end."""
    log_path = state_dir.parent / f"{state_dir.name}-stack.log"
    log = log_path.open("a", encoding="utf-8")
    process = subprocess.Popen(
        [
            tool("tvpay-emulator"),
            "up",
            "--headless",
            "--automation-port",
            "0",
            "--state-dir",
            str(state_dir),
            *args,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=clean_env(TVPAY_TV_RESUBMIT_SECONDS="1", **(env or {})),
    )
    found: list[str] = []
    ready = threading.Event()
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(process.stdout, log, found, ready), daemon=True).start()
    try:
        if not ready.wait(START_TIMEOUT) or not found:
            raise AssertionError(f"the stack did not start; see {log_path}")
        client = AutomationClient(found[0], timeout=60)
        client.wait(screen="home", timeout=90)
        yield RunningStack(process, client, found[0], client.where(), log_path)
    finally:
        stop_stack(process)
        log.close()


def stop_stack(process: subprocess.Popen[str], sig: signal.Signals = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


# -- the ledger -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    """Paid bills and successful payments at one moment (demo data has bills paid before the
    box existed: those carry no payment and are left out)."""

    paid_bills: frozenset[tuple[str, str | None]]  # (bill id, payment id recorded on the bill)
    succeeded: tuple[tuple[str, str], ...]  # (payment id, bill id)

    @classmethod
    def read(cls, stack: RunningStack) -> Ledger:
        with stack.db() as db:
            paid = db.execute("SELECT id, payment_id FROM bills WHERE status = 'paid'").fetchall()
            done = db.execute(
                "SELECT id, bill_id FROM payments"
                " WHERE status IN ('succeeded', 'credited') ORDER BY id"
            ).fetchall()
        return cls(frozenset((b, p) for b, p in paid), tuple((p, b) for p, b in done))

    def check_consistent(self) -> None:
        """Each bill has at most one successful payment, and bill and payment point at each other."""
        bills = [bill for _payment, bill in self.succeeded]
        assert len(bills) == len(set(bills)), f"a bill was paid twice: {sorted(bills)}"
        paid_by = {bill: payment for bill, payment in self.paid_bills if payment is not None}
        assert paid_by == {bill: payment for payment, bill in self.succeeded}, (
            "bills marked paid and successful payments disagree"
        )

    def newly_paid_since(self, before: Ledger) -> set[str]:
        """Bills paid since ``before`` (after checking the whole ledger is consistent)."""
        self.check_consistent()
        return {bill for bill, _payment in self.paid_bills - before.paid_bills}


def unpaid_account(stack: RunningStack, household_no: str | None = None) -> str:
    """An account of the household (default: the demo one) with an unpaid bill."""
    household = household_no or stack.where["demo"]["household_no"]
    with stack.db() as db:
        row = db.execute(
            "SELECT a.id FROM utility_accounts a JOIN households h ON a.household_id = h.id"
            " JOIN bills b ON b.account_id = a.id"
            " WHERE h.household_no = ? AND a.bound_at IS NOT NULL AND b.status = 'unpaid'"
            # A prepaid purchase's one-off bill is not a bill the household pays from Home.
            " AND b.kind = 'bill'"
            " ORDER BY a.id LIMIT 1",
            (household,),
        ).fetchone()
    assert row is not None, f"household {household} has no unpaid bill left"
    return str(row[0])


def wait_until(predicate: Any, timeout: float, what: str, *, show: Any = None) -> None:
    """Poll ``predicate`` until true; on timeout fail with ``what`` (and ``show()``, if given)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            seen = f"; last seen: {show()}" if show is not None else ""
            raise AssertionError(f"timed out waiting for {what}{seen}")
        time.sleep(0.05)
