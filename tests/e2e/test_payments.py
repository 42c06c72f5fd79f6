"""Paying bills through the whole box, with the faults a household's box meets on the way.

Every test drives the TV app through the automation API against real processes (gateway,
virtual dongle, daemon) and then checks the gateway's database: exactly one payment for the bill
that was paid, none lost, none doubled.
"""

from __future__ import annotations

import time

import requests

from tests.e2e.flows import (
    confirm_and_wait_receipt,
    focus_on,
    go_home,
    pay,
    start_payment,
    type_pin,
)
from tests.e2e.stack import Ledger, RunningStack, unpaid_account, wait_until

RESTART_BOUND = 3.0


def test_pay_a_bill(stack: RunningStack) -> None:
    before = Ledger.read(stack)
    receipt = pay(stack.client, unpaid_account(stack), stack.pin)
    assert any(text.startswith(("凭证号", "Receipt")) for text in receipt["texts"])
    assert len(Ledger.read(stack).newly_paid_since(before)) == 1


def _bank_state(stack: RunningStack) -> dict:
    return requests.get(stack.where["bank"]["url"] + "/control/state", timeout=10).json()


def test_pay_with_the_demo_card_debits_the_bank_once(stack: RunningStack) -> None:
    client = stack.client
    card = stack.where["demo"]["bank_token"]
    bank_before = _bank_state(stack)
    (balance_before,) = (
        a["balance_fen"] for a in bank_before["accounts"] if a["bank_token"] == card
    )
    before = Ledger.read(stack)
    start_payment(client, unpaid_account(stack))
    client.press("yellow")  # from the wallet (the default) to the other way to pay: the card
    client.wait(screen="confirm", text="银行卡 " + stack.where["demo"]["card_masked"], timeout=20)
    type_pin(client, stack.pin)
    confirm_and_wait_receipt(client)
    (bill,) = Ledger.read(stack).newly_paid_since(before)
    with stack.db() as db:
        amount, kind = db.execute(
            "SELECT p.amount_fen, f.kind FROM payments p"
            " JOIN funding_sources f ON p.funding_source_id = f.id"
            " WHERE p.bill_id = ? AND p.status IN ('succeeded', 'credited')",
            (bill,),
        ).fetchone()
    assert kind == "mandate"
    bank = _bank_state(stack)
    seen = {d["idempotency_key"] for d in bank_before["debits"]}
    new = [d for d in bank["debits"] if d["idempotency_key"] not in seen]
    assert [(d["bank_token"], d["amount_fen"], d["status"]) for d in new] == [(card, amount, "ok")]
    (balance,) = (a["balance_fen"] for a in bank["accounts"] if a["bank_token"] == card)
    assert balance == balance_before - amount


def test_network_cut_after_signing_then_restored_pays_once(stack: RunningStack) -> None:
    client = stack.client
    before = Ledger.read(stack)
    start_payment(client, unpaid_account(stack))
    type_pin(client, stack.pin)
    # A slow link keeps the signed authorization in flight long enough to cut it.
    client.network("slow", delay_ms=1500)
    client.press("ok")
    client.wait(text="正在发送", timeout=10)  # signed, journaled, being sent
    client.network("down")
    client.wait(text="等待网络", timeout=20)
    assert Ledger.read(stack).newly_paid_since(before) == set()
    client.network("up")
    wait_until(lambda: Ledger.read(stack).newly_paid_since(before), 30, "the resubmission")
    (bill,) = Ledger.read(stack).newly_paid_since(before)
    with stack.db() as db:
        receipts = db.execute(
            "SELECT COUNT(*) FROM receipts r JOIN payments p ON r.payment_id = p.id"
            " WHERE p.bill_id = ?",
            (bill,),
        ).fetchone()[0]
    assert receipts == 1


def test_gateway_restart_mid_flow(stack: RunningStack) -> None:
    client = stack.client
    before = Ledger.read(stack)
    start_payment(client, unpaid_account(stack))
    type_pin(client, stack.pin)
    client.restart_gateway()
    confirm_and_wait_receipt(client)
    assert len(Ledger.read(stack).newly_paid_since(before)) == 1


def test_gateway_restart_does_not_wait_for_the_tv_apps_idle_connections(
    stack: RunningStack,
) -> None:
    client = stack.client
    go_home(client)  # the app has just talked to the gateway: its pooled connection is open
    started = time.monotonic()
    client.restart_gateway()
    # Seconds, not the supervisor's kill timeout (5 s): a gateway held by an idle keep-alive
    # connection would be killed only then.
    assert time.monotonic() - started < RESTART_BOUND


def test_daemon_killed_and_restarted(stack: RunningStack) -> None:
    client = stack.client
    before = Ledger.read(stack)
    account = unpaid_account(stack)
    start_payment(client, account)
    client.kill_daemon()
    client.wait(screen="state", timeout=15)  # the app notices the dongle is gone
    client.start_daemon()
    # The app comes back by itself (to the payment, or home when it had to start over).
    wait_until(lambda: client.screen()["screen"] in ("confirm", "home"), 20, "the dongle back")
    if client.screen()["screen"] == "confirm":
        type_pin(client, stack.pin)
        confirm_and_wait_receipt(client)
    else:
        pay(client, account, stack.pin)
    assert len(Ledger.read(stack).newly_paid_since(before)) == 1


def test_unplug_during_signing_then_replug_pays_once(stack: RunningStack) -> None:
    client = stack.client
    before = Ledger.read(stack)
    account = unpaid_account(stack)
    start_payment(client, account)
    type_pin(client, stack.pin)
    # The power goes while the dongle writes its signature counter: pulled out mid-signing.
    client.fault("power_cut")
    client.press("ok")
    client.wait(text="请插入支付盾", timeout=15)
    client.plug()
    client.wait(text="支付盾已就绪", timeout=15)
    assert Ledger.read(stack).newly_paid_since(before) == set()
    pay(client, account, stack.pin)  # the household tries again: same bill, same payment
    assert len(Ledger.read(stack).newly_paid_since(before)) == 1


def test_language_switch_relabels_the_screens(stack: RunningStack) -> None:
    client = stack.client
    go_home(client)
    client.press("yellow")
    client.wait(screen="settings", timeout=10)
    focus_on(client, "lang:en")
    state = client.press("ok")
    try:
        assert state["language"] == "en"
        home = go_home(client)
        assert "Payment dongle ready" in home["texts"]
    finally:
        client.press("yellow")
        client.wait(screen="settings", timeout=10)
        focus_on(client, "lang:zh_CN")
        client.press("ok")
    assert "支付盾已就绪" in go_home(client)["texts"]
