"""The money fault matrix: a card (mandate) payment and its refunds, with the gateway, the
dispatcher or the bank killed (SIGKILL) at each step, or the link between two of them cut there,
and the bank's answers delivered twice or out of order. After each cell, with the network healed,
what was killed started again and the real dispatcher left to run:

- ``tvpay-gateway ledger check`` passes: no money created or destroyed;
- the utility wrote the bill off once when the payment is credited, never otherwise;
- the bank debited the card once, and reversed it once when the payment is refunded;
- the payment ends ``credited`` or ``refunded``, with one receipt.

Real processes throughout (tests/gateway/faultworld.py); SQLite and PostgreSQL share nothing.
The processes are shared by the cells of one database; each cell has its own household.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pytest

from gateway.config import GatewayConfig
from gateway.context import build_context
from gateway.keys import ensure_keys
from tests.emulator.utility import utility_process
from tests.gateway.conftest import fresh_database_url
from tests.gateway.faultworld import (
    CARD_FEN,
    FaultWorld,
    Payer,
    Where,
    fault_world,
    in_thread,
)
from tests.gateway.helpers import GatewayUnderTest, Manufacturer, wait_until

Journey = Literal["payment", "utility_refund", "staff_refund"]
Victim = Literal["gateway", "dispatcher", "bank"] | None  # None: the link is cut instead

DEBIT = ("gw_bank", "POST", "/debits")
RECEIPT = ("box", "POST", "/api/v1/payments/{pid}/authorize")
WRITEOFF = ("dsp_util", "POST", "/writeoffs")
REVERSAL = ("dsp_bank", "POST", "/debits/{pid}/reversal")
REFUND = ("box", "POST", "/api/v1/staff/payments/{pid}/refund")


@dataclass(frozen=True)
class Cell:
    journey: Journey
    step: str
    link: tuple[str, str, str] | None  # (link, method, path) where the fault strikes
    where: Where = "request"
    victim: Victim = None
    deliver: bool = False  # a held message goes on after the kill (else it is lost with it)

    @property
    def id(self) -> str:
        fault = f"kill-{self.victim}" if self.victim else f"cut-{self.where}"
        return f"{self.journey}:{self.step}:{fault}{'+delivered' if self.deliver else ''}"


# Each row: a step, and the fault there: the process on one side of the link killed (a message
# it held dropped, or delivered after its death), or the link cut (victim None).
MATRIX: list[Cell] = [
    # -- a card payment --------------------------------------------------------------------
    # authorize committed (processing); its debit request on the way to the bank
    Cell("payment", "processing-committed", DEBIT, "request", "gateway"),
    Cell("payment", "processing-committed", DEBIT, "request"),
    # the debit request at the bank when the bank dies (it never answers, never debits)
    Cell("payment", "debit-at-bank", DEBIT, "request", "bank", deliver=True),
    # the bank debited; its answer on the way back
    Cell("payment", "bank-debited", DEBIT, "answer", "gateway"),
    Cell("payment", "bank-debited", DEBIT, "answer", "bank"),
    Cell("payment", "bank-debited", DEBIT, "answer"),
    # the answer applied (succeeded, write-off queued); the receipt on the way to the box
    Cell("payment", "answer-applied", RECEIPT, "answer", "gateway"),
    Cell("payment", "answer-applied", RECEIPT, "answer"),
    # the notification queued while no dispatcher runs
    Cell("payment", "notification-queued", None, victim="dispatcher"),
    # the dispatcher leased the write-off; its request never reaches the utility
    Cell("payment", "writeoff-leased", WRITEOFF, "request", "dispatcher"),
    Cell("payment", "writeoff-leased", WRITEOFF, "request"),
    # the request in flight: it reaches the utility after the dispatcher died
    Cell("payment", "writeoff-in-flight", WRITEOFF, "request", "dispatcher", deliver=True),
    # the utility wrote the bill off; its answer on the way back
    Cell("payment", "utility-wrote-off", WRITEOFF, "answer", "dispatcher"),
    Cell("payment", "utility-wrote-off", WRITEOFF, "answer"),
    # the answer recorded (credited)
    Cell("payment", "credited", None, victim="dispatcher"),
    # -- the automatic refund after the utility rejects the write-off ------------------------
    # the utility rejected the write-off; its answer on the way back
    Cell("utility_refund", "utility-rejected", WRITEOFF, "answer", "dispatcher"),
    Cell("utility_refund", "utility-rejected", WRITEOFF, "answer"),
    # refund posted, the reversal queued and leased; its request on the way to the bank
    Cell("utility_refund", "reversal-sent", REVERSAL, "request", "dispatcher"),
    Cell("utility_refund", "reversal-sent", REVERSAL, "request"),
    Cell("utility_refund", "reversal-at-bank", REVERSAL, "request", "bank", deliver=True),
    # the bank reversed; its answer on the way back
    Cell("utility_refund", "bank-reversed", REVERSAL, "answer", "dispatcher"),
    Cell("utility_refund", "bank-reversed", REVERSAL, "answer", "bank"),
    Cell("utility_refund", "bank-reversed", REVERSAL, "answer"),
    # -- a staff refund of a succeeded card payment ------------------------------------------
    # refund posted (refunded, reversal queued); the answer on the way to the staff member
    Cell("staff_refund", "refund-posted", REFUND, "answer", "gateway"),
    Cell("staff_refund", "refund-posted", REFUND, "answer"),
    # The reversal is the same message whichever refund queued it: the bank killed and the
    # links cut on its way are the rows above; here the dispatcher dies on each side of it.
    Cell("staff_refund", "reversal-sent", REVERSAL, "request", "dispatcher"),
    Cell("staff_refund", "bank-reversed", REVERSAL, "answer", "dispatcher"),
    # the reversal recorded
    Cell("staff_refund", "refunded", None, victim="dispatcher"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def money(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    manufacturer: Manufacturer,
) -> Iterator[FaultWorld]:
    tmp = tmp_path_factory.mktemp(f"faults-{request.param}")
    config = GatewayConfig(
        state_dir=tmp,
        database_url=fresh_database_url(request, request.param, tmp),
        manufacturer_ca=(manufacturer.ca_path,),
    )
    ensure_keys(tmp, config.gateway_id)
    ctx = build_context(config)
    gw = GatewayUnderTest.setup("http://127.0.0.1:9", ctx, manufacturer)
    key = ctx.keys.receipt_public_pem.encode()
    try:
        with utility_process(tmp / "utility", key) as utility:
            # An hour ahead of the wall clock: what the gateway queues is due at once.
            utility.set_clock(int(time.time()) + 3600)
            with fault_world(gw, config, utility, tmp) as running:
                yield running
                # The command line itself, once over everything the cells did.
                check = running.ledger_check_process()
                assert check.returncode == 0, check.stdout + check.stderr
    finally:
        ctx.db.engine.dispose()


def _start(money: FaultWorld, cell: Cell, payer: Payer) -> None:
    """Run the journey up to the cell's step, where the fault strikes."""
    link = None
    if cell.link is not None:
        name, method, path = cell.link
        link = money.links[name].rule(
            method, path.format(pid=payer.payment_id), cell.where, hold=cell.victim is not None
        )
    elif cell.step == "notification-queued":
        money.kill("dispatcher")
    if cell.journey == "utility_refund":
        reject = {"reject": {"count": 1, "reason": "account_closed"}}
        money.utility.control("POST", "/control/faults", reject)
    if cell.journey == "staff_refund":
        # The write-off cannot reach the utility until the refund is made: a payment the
        # utility credited is not refunded here (409 payment_credited).
        money.links["dsp_util"].rule("POST", "/writeoffs", "request", once=False)
    box = in_thread(lambda: money.box_authorize(payer))
    staff = None
    if cell.journey == "staff_refund":
        paid = box()
        assert paid is not None and paid.status_code == 200, paid
        staff = in_thread(lambda: money.staff_refund(payer))
    if link is not None:
        link.wait_fired()
        if cell.victim is not None:
            money.kill(cell.victim)
            link.release(deliver=cell.deliver)
    if cell.step in ("credited", "refunded"):
        money.wait_settled(payer.payment_id, cell.step)
        money.kill("dispatcher")
    if staff is not None:
        done = staff()
        assert done is None or done.status_code == 200, done.text
    elif cell.journey != "staff_refund":
        box()


def _finish(money: FaultWorld, payer: Payer, expected: str, first_day: str) -> None:
    """Heal, let the box's journal send its authorization again, wait for the dispatcher, and
    check the four invariants."""
    money.heal()
    again = money.box_authorize(payer)  # the box's journal, until it holds the receipt
    assert again.status_code == 200, again.text
    money.wait_settled(payer.payment_id, expected)
    status, said = money.ledger_check()
    assert status == 0 and said.startswith("ledger sound"), said
    assert money.utility_writeoffs(payer.payment_id, first_day) == (expected == "credited")
    debits = money.bank.debits(payer.payment_id)
    assert [d["status"] for d in debits] == ["ok"], debits
    assert money.bank_reversals(debits[0]) == (expected == "refunded")
    taken = payer.bill["amount_fen"] if expected == "credited" else 0
    assert money.bank.balance(payer.bank_token) == CARD_FEN - taken
    receipts = money.receipts(payer.payment_id)
    assert len(receipts) == 1
    assert again.json()["receipt"]["receipt_no"] == receipts[0]
    assert money.tracebacks() == []  # nothing crashed on the way, in any process


@pytest.mark.parametrize("cell", MATRIX, ids=lambda c: c.id)
def test_fault_at_each_step(money: FaultWorld, cell: Cell) -> None:
    payer = money.payer()
    first_day = money.utility_day()
    _start(money, cell, payer)
    if cell.journey == "staff_refund" and cell.victim == "gateway":
        # The staff member never heard; asking again is answered, and gives nothing twice.
        money.heal()
        repeat = money.staff_refund(payer)
        assert repeat.json()["error"]["code"] == "payment_refunded", repeat.text
    expected = "credited" if cell.journey == "payment" else "refunded"
    _finish(money, payer, expected, first_day)


def test_a_status_answer_applied_before_the_debits_own_answer(money: FaultWorld) -> None:
    payer = money.payer()
    first_day = money.utility_day()
    held = money.links["gw_bank"].rule("POST", "/debits", "answer", hold=True)
    box = in_thread(lambda: money.box_authorize(payer))
    held.wait_fired()  # the bank took the money; the gateway has not heard
    money.links["dsp_bank"].remove(payer.quarantine)  # the resolver asks the bank and applies
    wait_until(lambda: money.status(payer.payment_id) != "processing", 30, "never resolved")
    held.release(deliver=True)  # now the debit's own answer arrives
    late = box()
    assert late is not None and late.status_code == 200, late
    assert late.json()["receipt"]["receipt_no"] == money.receipts(payer.payment_id)[0]
    _finish(money, payer, "credited", first_day)


def test_a_status_answer_arriving_after_the_debits_answer_was_applied(money: FaultWorld) -> None:
    payer = money.payer()
    first_day = money.utility_day()
    held = money.links["gw_bank"].rule("POST", "/debits", "answer", hold=True)
    box = in_thread(lambda: money.box_authorize(payer))
    held.wait_fired()
    status = money.links["dsp_bank"].rule("GET", f"/debits/{payer.payment_id}", "answer", hold=True)
    money.links["dsp_bank"].remove(payer.quarantine)
    status.wait_fired()  # the bank answered the resolver "taken"; that answer is held
    held.release(deliver=True)
    answer = box()
    assert answer is not None and answer.status_code == 200, answer
    status.release(deliver=True)  # the resolver hears "taken" for a payment already succeeded
    _finish(money, payer, "credited", first_day)


def test_two_answers_for_one_debit(money: FaultWorld) -> None:
    """The box sends its authorization again while the first debit's answer is held: the bank
    answers both with the one debit, and the gateway applies it once."""
    payer = money.payer()
    first_day = money.utility_day()
    held = money.links["gw_bank"].rule("POST", "/debits", "answer", hold=True)
    first = in_thread(lambda: money.box_authorize(payer))
    held.wait_fired()
    second = money.box_authorize(payer)
    assert second.status_code == 200, second.text
    held.release(deliver=True)
    late = first()
    assert late is not None and late.status_code == 200, late
    assert late.json()["receipt"] == second.json()["receipt"]
    _finish(money, payer, "credited", first_day)
