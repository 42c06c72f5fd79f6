"""冲正 through real processes on SQLite and PostgreSQL: ``tvpay-gateway prepaid sweep`` and the
dispatcher's pass reverse card purchases never written within their window, through the
ordinary refund path, and leave for staff those a write-card block may have reached."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from emulator.meters.card_meter import Outcome
from tests.gateway.card_world import WALLET_FEN, CardWorld, card_world
from tests.gateway.helpers import GatewayUnderTest, wait_until


@pytest.fixture
def world(gw: GatewayUnderTest) -> CardWorld:
    return card_world(gw)


def _sweep(world: CardWorld, now: int) -> dict[str, Any]:
    done = world.cli("prepaid", "sweep", "--now", str(now))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _payment(world: CardWorld, payment_id: str) -> dict[str, Any]:
    return world.gw.call("GET", f"/api/v1/payments/{payment_id}", world.box.token).json()


def _ledger_sound(world: CardWorld) -> bool:
    done = world.cli("ledger", "check")
    return done.returncode == 0 and "ledger sound" in done.stdout


def test_an_unwritten_purchase_is_reversed_and_refunded_once(world: CardWorld) -> None:
    bought = world.buy(30000)
    assert world.wallet_fen() == WALLET_FEN - 30000
    fulfil_by = world.row(bought["purchase_id"]).fulfil_by
    assert _sweep(world, fulfil_by - 1) == {"reversed": [], "needs_card": [], "failed": []}
    assert world.purchase(bought["purchase_id"])["fulfilment"] == "pending"

    swept = _sweep(world, fulfil_by)
    assert swept == {"reversed": [bought["purchase_id"]], "needs_card": [], "failed": []}
    assert world.purchase(bought["purchase_id"])["fulfilment"] == "reversed"
    payment = _payment(world, bought["payment_id"])
    assert (payment["status"], payment["refund_reason"]) == ("refunded", "card_not_written")
    assert world.wallet_fen() == WALLET_FEN
    assert _ledger_sound(world)
    (audited,) = [
        e
        for e in world.gw.staff("GET", "/audit").json()["entries"]
        if e["action"] == "payment_refund" and e["target"] == bought["payment_id"]
    ]
    assert audited["actor"] == "sweep"

    assert _sweep(world, fulfil_by + 86400) == {"reversed": [], "needs_card": [], "failed": []}
    assert world.wallet_fen() == WALLET_FEN
    assert world.notifications(bought["payment_id"]) == 0  # the utility never hears of it


def test_a_card_shown_after_the_reversal_gets_no_block(world: CardWorld) -> None:
    bought = world.buy(30000)
    _sweep(world, world.row(bought["purchase_id"]).fulfil_by)
    answer = world.box.session(world.card).json()
    assert answer["action"] == "none" and "apdus" not in answer
    assert "reversed" in answer["reason"] and "refunded" in answer["reason"]
    assert "¥300.00" in answer["reason"]
    assert world.issues(bought["purchase_id"]) == []
    assert world.box.confirm(world.card).status_code == 409
    assert world.meter.insert(world.card).outcome == Outcome.NOTHING


def test_a_purchase_whose_block_went_out_waits_for_the_card(world: CardWorld) -> None:
    bought = world.buy()
    world.box.session(world.card)  # a block went out; whether it was written, nobody knows
    fulfil_by = world.row(bought["purchase_id"]).fulfil_by
    swept = _sweep(world, fulfil_by)
    assert swept == {"reversed": [], "needs_card": [bought["purchase_id"]], "failed": []}
    row = world.row(bought["purchase_id"])
    assert (row.fulfilment, row.needs_card) == ("pending", True)
    assert _payment(world, bought["payment_id"])["status"] == "succeeded"
    assert _sweep(world, fulfil_by + 86400) == {"reversed": [], "needs_card": [], "failed": []}

    world.box.write(world.card)  # the household shows the card at last
    assert world.box.confirm(world.card).status_code == 200
    row = world.row(bought["purchase_id"])
    assert (row.fulfilment, row.needs_card) == ("done", False)
    assert world.meter.insert(world.card).amount_fen == 10000
    assert _ledger_sound(world)


def test_a_card_seen_holding_the_purchase_is_never_reversed(world: CardWorld) -> None:
    bought = world.buy()
    world.box.write(world.card)  # written; the confirmation never arrived
    (issued,) = world.issues(bought["purchase_id"])
    # The next read must come strictly after the block in the gateway's whole seconds.
    wait_until(lambda: time.time() >= issued.issued_at + 1, 5, "the clock did not move")
    assert world.box.session(world.card).json()["action"] == "confirm"  # read, no new block
    assert world.reads()[-1].read_at > issued.issued_at
    swept = _sweep(world, world.row(bought["purchase_id"]).fulfil_by)
    assert swept["reversed"] == [] and swept["needs_card"] == [bought["purchase_id"]]
    assert world.meter.insert(world.card).amount_fen == 10000
    assert _payment(world, bought["payment_id"])["status"] == "succeeded"


def test_each_dispatcher_pass_sweeps(world: CardWorld) -> None:
    bought = world.buy()
    clock = world.gw.ctx.config.state_dir / "clock"
    clock.write_text(str(world.row(bought["purchase_id"]).fulfil_by))
    done = world.cli("dispatch", "--once", "--clock-file", str(clock))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"delivered": 0, "failed": 0}
    assert world.purchase(bought["purchase_id"])["fulfilment"] == "reversed"
    assert _payment(world, bought["payment_id"])["refund_reason"] == "card_not_written"
    assert world.wallet_fen() == WALLET_FEN
    assert _ledger_sound(world)
