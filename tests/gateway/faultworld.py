"""The whole money path as real processes, with every network link between them behind a relay
the test controls, for the fault matrix (tests/gateway/test_fault_matrix.py).

    box ──box──▶ gateway ──gw_bank──▶ bank ◀──dsp_bank── dispatcher ──dsp_util──▶ utility

The gateway, the dispatcher and the bank are processes the test kills with SIGKILL and starts
again on the same state and database; the utility simulator runs throughout. A link can cut one
request (before it is forwarded) or one answer (after the far end acted on it), or hold it until
the test says whether it goes on: holding is how a process is stopped at a step the test chose,
and only then killed, so no test races a process it signals. The dispatcher's clock is the
utility's clock file, moved forward to let leases run out and retries come due.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import requests
from sqlalchemy import select

from gateway.billers import set_notify_url
from gateway.cli import build_parser
from gateway.config import GatewayConfig, load_config, write_config
from gateway.db.models import OutboxMessage, Payment, Receipt
from tests.emulator.utility import UtilityUnderTest
from tests.fixtures.bank import BankProcess, bank_process
from tests.fixtures.http_relay import Dropped, HttpRelay
from tests.gateway.helpers import GatewayUnderTest, TestDongle, wait_until
from tests.gateway.writeoff_env import BILLER

CLI = [sys.executable, "-m", "gateway.cli"]
CARD_FEN = 1_000_000  # what each payer's card holds before it pays
LEASE = 60  # seconds a dispatcher's claim on a message lasts
WAIT = 60  # seconds any one step may take before the test fails

Where = Literal["request", "answer"]


@dataclass
class Rule:
    """What a link does to the next message (or every one, not ``once``) that matches."""

    method: str
    path: re.Pattern[str]
    where: Where
    hold: bool  # hold until released; else cut
    once: bool
    fired: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)
    _deliver: bool = False

    def release(self, deliver: bool) -> None:
        """Let the held message go on (``deliver``) or drop it, as a dead line would."""
        self._deliver = deliver
        self._released.set()

    def wait_fired(self) -> None:
        assert self.fired.wait(WAIT), f"no {self.method} {self.path.pattern} reached the link"

    def act(self) -> None:
        self.fired.set()
        if self.hold:
            self._released.wait(WAIT)
            if self._deliver:
                return
        raise Dropped


class Link(HttpRelay):
    """One network link: a relay whose upstream follows the process it leads to."""

    def __init__(self, upstream: str) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        super().__init__(upstream)

    def rule(
        self, method: str, path: str, where: Where, *, hold: bool = False, once: bool = True
    ) -> Rule:
        """Cut (or hold) the next ``method`` whose path matches the regular expression ``path``
        in full; every such one until healed when not ``once``."""
        added = Rule(method, re.compile(path), where, hold, once)
        with self._lock:
            self._rules.append(added)
        return added

    def remove(self, rule: Rule) -> None:
        with self._lock:
            self._rules.remove(rule)

    def heal(self) -> None:
        with self._lock:
            rules, self._rules = self._rules, []
        for rule in rules:
            rule.release(deliver=False)  # nobody is left to answer a held message's client

    def _match(self, method: str, path: str, where: Where) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if (rule.method, rule.where) == (method, where) and rule.path.fullmatch(path):
                    if rule.once:
                        self._rules.remove(rule)
                    return rule
        return None

    def before(self, method: str, path: str) -> None:
        rule = self._match(method, path, "request")
        if rule is not None:
            rule.act()

    def rewrite(self, method: str, path: str, status: int, content: bytes) -> bytes:
        rule = self._match(method, path.split("?")[0], "answer")
        if rule is not None:
            rule.act()
        return content


class Restartable:
    """A process of ours started from a command line that prints one line once it serves."""

    def __init__(self, argv: list[str], ready: str, log: Path, env: dict[str, str]) -> None:
        self.argv, self.ready, self.log, self.env = argv, ready, log, env
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> str:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith(self.ready), (line, self.log.read_text())
        return line

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None and self.running
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.terminate()
            self.proc.wait(30)


@dataclass
class Payer:
    dongle: TestDongle
    token: str
    bill: dict[str, Any]
    bank_token: str
    payment_id: str
    authorization: dict[str, Any]
    quarantine: Rule  # the resolver's question about this payment, cut until healed


@dataclass
class FaultWorld:
    gw: GatewayUnderTest  # the in-test context reads the database; HTTP goes to the process
    utility: UtilityUnderTest
    state_dir: Path
    links: dict[str, Link]
    gateway: Restartable
    dispatcher: Restartable
    bank: BankProcess
    _banks: contextlib.ExitStack

    @property
    def clock_file(self) -> Path:
        return self.utility.clock_file

    # --- the processes -------------------------------------------------------------------

    def start_gateway(self) -> None:
        url = self.gateway.start().split()[-1]
        self.gw.url = url
        self.links["box"].upstream = url

    def start_bank(self) -> None:
        self.bank = self._banks.enter_context(bank_process(self.state_dir / "bank"))
        self.links["gw_bank"].upstream = self.links["dsp_bank"].upstream = self.bank.url

    def kill(self, victim: str) -> None:
        if victim == "bank":
            self.bank.process.send_signal(signal.SIGKILL)
            self.bank.process.wait(10)
        else:
            {"gateway": self.gateway, "dispatcher": self.dispatcher}[victim].kill()

    def restart_dead(self) -> None:
        if self.bank.process.poll() is not None:
            self.start_bank()
        if not self.gateway.running:
            self.start_gateway()
        if not self.dispatcher.running:
            self.dispatcher.start()

    # --- a household paying by card ------------------------------------------------------

    def payer(self) -> Payer:
        """A household with one bill, an active dongle, and a card mandate as its default; the
        payment created and signed (not yet sent). The resolver's link to the bank is cut for
        this payment until the network heals, so only the step under test reaches the bank."""
        household_no = self.gw.household()
        self.gw.bills(household_no, months=1, fund=False)
        dongle = self.gw.provision(household_no)
        token = self.gw.session_token(dongle)
        bank_token = "card-" + uuid.uuid4().hex[:12]
        self.bank.account(bank_token, CARD_FEN)
        terms = {
            "bank_token": bank_token,
            "card_masked": "622202******1234",
            "per_payment_limit_fen": 50_000,
            "monthly_limit_fen": 200_000,
        }
        bound = self.gw.staff("POST", f"/households/{household_no}/mandates", json=terms)
        assert bound.status_code == 201, bound.text
        chosen = self.gw.call(
            "PUT",
            "/api/v1/funding-sources/default",
            token,
            json={"funding_source": bound.json()["funding_source_id"]},
        )
        assert chosen.status_code == 200, chosen.text
        bill = self.gw.call("GET", "/api/v1/bills", token).json()["bills"][0]
        created = self.gw.create_payment(token, bill)
        assert created.status_code == 201, created.text
        fields = created.json()["sign_fields"]
        quarantine = self.links["dsp_bank"].rule(
            "GET", f"/debits/{fields['payment_id']}", "request", once=False
        )
        authorization = dongle.sign_payment(fields)
        return Payer(
            dongle, token, bill, bank_token, fields["payment_id"], authorization, quarantine
        )

    def box_authorize(self, payer: Payer) -> requests.Response:
        """The box sends the journalled authorization through its link to the gateway."""
        return requests.post(
            f"{self.links['box'].url}/api/v1/payments/{payer.payment_id}/authorize",
            json=payer.authorization,
            timeout=WAIT * 2,
        )

    def staff_refund(self, payer: Payer) -> requests.Response:
        return requests.post(
            f"{self.links['box'].url}/api/v1/staff/payments/{payer.payment_id}/refund",
            json={"reason": "household asked at the shop"},
            headers={"Authorization": f"Bearer {self.gw.staff_token}"},
            timeout=WAIT * 2,
        )

    # --- reading the state ---------------------------------------------------------------

    def status(self, payment_id: str) -> str:
        return self.gw.ctx.db.read(lambda s: s.get(Payment, payment_id).status)

    def outbox(self, payment_id: str) -> dict[str, tuple[bool, int, str | None]]:
        """Topic → (delivered, attempts, claimed_by) of the payment's messages."""
        rows = self.gw.ctx.db.read(
            lambda s: list(s.scalars(select(OutboxMessage).where(OutboxMessage.key == payment_id)))
        )
        return {r.topic: (r.delivered_at is not None, r.attempts, r.claimed_by) for r in rows}

    def receipts(self, payment_id: str) -> list[str]:
        return self.gw.ctx.db.read(
            lambda s: list(
                s.scalars(select(Receipt.receipt_no).where(Receipt.payment_id == payment_id))
            )
        )

    def utility_writeoffs(self, payment_id: str, first_day: str) -> int:
        """Lines naming the payment on the utility's statements, from ``first_day`` to its
        clock's day: the write-offs it made for it."""
        day = datetime.fromisoformat(first_day).date()
        last = self.utility_day()
        lines = 0
        while day.isoformat() <= last:
            text = requests.get(f"{self.utility.url}/statements/{day}.csv", timeout=10).text
            lines += sum(1 for row in text.splitlines()[1:] if f",{payment_id}," in f",{row},")
            day += timedelta(days=1)
        return lines

    def utility_day(self) -> str:
        unix = int(self.clock_file.read_text())
        return datetime.fromtimestamp(unix, UTC).date().isoformat()

    def bank_reversals(self, debit: dict[str, Any]) -> int:
        """Reversal lines of the debit's key in the bank's settlement file of their day."""
        if debit["reversed_at"] is None:
            return 0
        day = debit["reversed_at"][:10]
        text = self.bank.call("GET", f"/settlements/{day}.csv").text
        return sum(
            1
            for row in text.splitlines()[1:]
            if row.split(",")[1:3] == [debit["idempotency_key"], "reversal"]
        )

    def ledger_check(self) -> tuple[int, str]:
        """``tvpay-gateway ledger check`` as the operator types it, run in this process (the
        command's own parser and handler: a process per cell would double the module's time);
        its exit status and what it printed. ``ledger_check_process`` runs it as a process."""
        args = build_parser().parse_args(self._cli_args("ledger", "check"))
        config = load_config(args.state_dir, args.config, args.database_url)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = args.func(args, config)
        return status, out.getvalue()

    def ledger_check_process(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *self._cli_args("ledger", "check")], capture_output=True, text=True, timeout=120
        )

    def _cli_args(self, *command: str) -> list[str]:
        return ["--state-dir", str(self.state_dir), *command]

    # --- healing -------------------------------------------------------------------------

    def heal(self) -> None:
        """Heal every link, start what was killed and clear the simulators' faults."""
        for link in self.links.values():
            link.heal()
        self.restart_dead()
        self.bank.clear_faults()
        self.utility.control("DELETE", "/control/faults")

    def settled(self, payment_id: str, expected: str) -> bool:
        """The payment in ``expected`` with all its messages delivered, and for a refund the
        bank's reversal made."""
        if self.status(payment_id) != expected:
            return False
        if not all(delivered for delivered, _n, _by in self.outbox(payment_id).values()):
            return False
        if expected == "refunded":
            return all(d["reversed_at"] is not None for d in self.bank.debits(payment_id))
        return True

    def wait_settled(self, payment_id: str, expected: str) -> None:
        def settled() -> bool:
            self.tick(payment_id)
            return self.settled(payment_id, expected)

        wait_until(
            settled,
            WAIT,
            f"payment {payment_id} did not end {expected}: {self.status(payment_id)}, "
            f"outbox {self.outbox(payment_id)}",
        )

    def tick(self, payment_id: str) -> None:
        """Move the dispatcher's clock to when the payment's next message comes due: its retry
        time, or the end of the lease a killed dispatcher left on it. Time passes only when
        nothing else can happen, so no wait in a test depends on a timer."""
        assert self.dispatcher.proc is not None
        alive = f":{self.dispatcher.proc.pid}:"
        rows = self.gw.ctx.db.read(
            lambda s: list(s.scalars(select(OutboxMessage).where(OutboxMessage.key == payment_id)))
        )
        now = int(self.clock_file.read_text())
        due = [
            (r.claimed_until if r.claimed_by else r.next_attempt_at)
            for r in rows
            if r.delivered_at is None and not (r.claimed_by and alive in r.claimed_by)
        ]
        later = [t for t in due if t is not None and t > now]
        if later and len(later) == len(due):
            self.utility.set_clock(min(later))

    def tracebacks(self) -> list[str]:
        return [
            p.log.name
            for p in (self.gateway, self.dispatcher)
            if "Traceback" in p.log.read_text(errors="replace")
        ]


@contextlib.contextmanager
def fault_world(
    gw: GatewayUnderTest, config: GatewayConfig, utility: UtilityUnderTest, state_dir: Path
) -> Iterator[FaultWorld]:
    """Start the bank, the links, the gateway and the dispatcher around ``gw``'s database."""
    with contextlib.ExitStack() as stack:
        banks = stack.enter_context(contextlib.ExitStack())
        bank = banks.enter_context(bank_process(state_dir / "bank"))
        links = {
            "box": Link("http://127.0.0.1:9"),
            "gw_bank": Link(bank.url),
            "dsp_bank": Link(bank.url),
            "dsp_util": Link(utility.url),
        }
        for link in links.values():
            stack.callback(link.close)
        # Long bank timeouts: an answer arrives or not as the test decides, never by a timer.
        write_config(replace(config, bank_url=links["gw_bank"].url, bank_timeout_seconds=WAIT))
        env = {**os.environ, "TVPAY_GATEWAY_BANK_URL": links["dsp_bank"].url}
        gateway = Restartable(
            [*CLI, "--state-dir", str(state_dir), "serve", "--port", "0"],
            "gateway listening on ",
            state_dir / "gateway.log",
            dict(os.environ),
        )
        dispatcher = Restartable(
            [
                *CLI,
                "--state-dir",
                str(state_dir),
                "dispatch",
                "--clock-file",
                str(utility.clock_file),
                "--resolve-every",
                "0.2",
                "--resolve-older-than",
                "0",
                "--timeout",
                "30",
                "--lease",
                str(LEASE),
            ],
            "dispatcher running",
            state_dir / "dispatcher.log",
            env,
        )
        world = FaultWorld(gw, utility, state_dir, links, gateway, dispatcher, bank, banks)
        stack.callback(gateway.stop)
        stack.callback(dispatcher.stop)
        world.start_gateway()
        dispatcher.start()
        world.gw.bills(world.gw.household(), months=1, fund=False)  # makes the biller
        world.gw.ctx.db.write(lambda s: set_notify_url(s, [BILLER], links["dsp_util"].url))
        yield world


def in_thread(call: Callable[[], requests.Response]) -> Callable[[], requests.Response | None]:
    """Run ``call`` (a box or staff request the test may cut) in a thread; the returned function
    joins it: the answer, or None when the connection died."""
    result: list[requests.Response | None] = [None]

    def run() -> None:
        with contextlib.suppress(requests.ConnectionError):
            result[0] = call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> requests.Response | None:
        thread.join(WAIT * 2)
        assert not thread.is_alive(), "the request never ended"
        return result[0]

    return join
