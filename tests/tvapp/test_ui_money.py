"""Money that moves, as the household sees it on the TV: the wallet's balance, a bill the wallet
cannot cover refused in words before the PIN, statuses in words in the history and on the
receipt, and 查询到账 (ask the utility whether it credited a payment).

The real app, gateway, daemon and dongle (tests/tvapp/world.py); the utility simulator and the
dispatcher run as their own processes for the crediting. Runs after tests/tvapp/test_ui.py, in
the same app and world: each test pays or imports what it looks at itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.tvapp.driver import AppDriver
from tests.tvapp.world import BANK_CARD_TOKEN, World

ENTER = 13
MONEY_ACCOUNT_NO = "4400123456"  # a bill bigger than the wallet: imported and bound here
BIG_BILL_FEN = 9_999_900
BIG_BILL_SHOWN = "¥99,999.00"
pytestmark = pytest.mark.timeout(300)


def _home(tv: AppDriver) -> dict[str, Any]:
    tv.press("home")
    return tv.wait_screen("home")


def _import_big_bill(world: World, tmp: Path) -> None:
    bill = {
        "biller_code": "TEST-MONEY",
        "biller_name": "测试热力公司",
        "utility": "electricity",
        "account_no": MONEY_ACCOUNT_NO,
        "holder_name": world.household["name"],
        "address": "杭州市拱墅区建设路45号",
        "bill_ref": "TEST-MONEY-11",
        "period": "2026-11",
        "amount_fen": BIG_BILL_FEN,
        "currency": "CNY",
        "due_date": "2026-12-15",
        "usage_quantity": 900,
    }
    path = tmp / "big-bill.json"
    path.write_text(json.dumps([bill], ensure_ascii=False))
    world.gateway_tool("bills", "import", str(path), "--format", "json")


def _pay_first_unpaid(tv: AppDriver) -> str:
    """Pay the oldest unpaid bill of the first account with one, with the remote; its id."""
    _home(tv)
    account = next(
        a for a in tv.app.home_vm.accounts if a["amount"] and a["amount"] != BIG_BILL_SHOWN
    )
    tv.focus_on(f"account:{account['account_id']}")
    tv.key(ENTER)
    tv.wait_screen("bills")
    tv.key(ENTER)
    tv.wait_screen("confirm")
    tv.type_digits("246813")
    tv.key(ENTER)
    tv.wait_screen("receipt")
    return tv.app.pay_vm.receipt_payment_id


def test_home_shows_the_wallet_balance(tv: AppDriver) -> None:
    state = _home(tv)
    wallet = tv.app.home_vm.wallet
    assert wallet.startswith("¥")
    assert f"钱包余额 {wallet}" in state["texts"]


def test_a_bill_the_wallet_cannot_cover_is_refused_in_words_before_the_pin(
    tv: AppDriver, world: World, tmp_path: Path
) -> None:
    _import_big_bill(world, tmp_path)
    services = tv.app.services
    services.session.call(
        lambda gw: gw.bind_account(
            "electricity", MONEY_ACCOUNT_NO, holder_name=world.household["name"]
        )
    )
    _home(tv)
    account = next(a for a in tv.app.home_vm.accounts if a["amount"] == BIG_BILL_SHOWN)
    tv.focus_on(f"account:{account['account_id']}")
    tv.key(ENTER)
    tv.wait_screen("bills")
    tv.key(ENTER)
    state = tv.wait_screen("confirm")
    wallet = tv.app.home_vm.wallet
    said = f"钱包余额 {wallet}，本账单需 {BIG_BILL_SHOWN}：请到营业厅充值或选择其他付款方式"
    assert said in state["texts"]
    # No PIN can be typed: the pad is hidden and the digits do nothing.
    assert not any(f.startswith("pad:") for f in state["focusables"])
    tv.type_digits("246813")
    assert tv.app.pay_vm.pin_length == 0
    # The journal entry is closed, refused before anything was signed.
    entry = services.journal.entries()[0]
    assert entry.amount_fen == BIG_BILL_FEN and entry.state == "refused"
    assert entry.authorization is None
    tv.screenshot("confirm-wallet-short-zh_CN")
    tv.press("back")
    tv.wait_screen("bills")


def test_a_paid_bill_reads_paid_and_being_credited_and_the_utility_cannot_be_asked_yet(
    tv: AppDriver,
) -> None:
    payment_id = _pay_first_unpaid(tv)
    state = tv.state()
    assert "状态：已扣款，处理中" in state["texts"]
    # 查询到账 from the receipt, with OK on its button: no utility is connected to this gateway
    # yet, and the household is told so in words.
    tv.focus_on("crediting")
    tv.key(ENTER)
    state = tv.wait_for(
        lambda s: tv.app.crediting_vm.state not in ("", "asking"), "the crediting answer"
    )
    assert tv.app.crediting_vm.payment_id == payment_id
    assert "暂不能向该缴费单位查询：对方确认后将显示已到账" in tv.wait_screen("receipt")["texts"]


def test_credited_and_refunded_payments_show_in_words_and_crediting_is_asked_from_history(
    tv: AppDriver, world: World, tmp_path: Path
) -> None:
    credited = _pay_first_unpaid(tv)
    refunded = _pay_first_unpaid(tv)
    # Staff give one back before it is written off; the dispatcher writes the other off at the
    # utility (a process of its own), which credits it.
    world.gateway_tool("refund", refunded, "--reason", "户主要求退款")
    world.start_utility(tmp_path / "utility")
    world.gateway_tool("dispatch", "--once")
    tv.app.controller.open_history()
    state = tv.wait_screen("history")
    rows = {p["key"]: p for p in tv.app.history_vm.payments}
    assert rows[credited]["status"] == "credited" and rows[credited]["utility_ref"]
    assert rows[refunded]["status"] == "refunded"
    ref = rows[credited]["utility_ref"]
    assert f"已到账 · 流水号 {ref}" in state["texts"]
    assert "已退款 · 户主要求退款" in state["texts"]
    # 查询到账 with the yellow key on the focused payment: progress, then the utility's answer.
    tv.app.sm.current_screen.set_focus(f"payment:{credited}")
    tv.press("yellow")
    assert tv.app.crediting_vm.state == "asking"
    assert "正在向缴费单位查询…" in tv.state()["texts"]
    tv.wait_for(lambda _s: tv.app.crediting_vm.state == "credited", "the crediting answer")
    assert tv.wait_screen("history")["texts"].count(f"已到账 · 流水号 {ref}") == 2
    tv.screenshot("history-credited-zh_CN")


def test_a_card_payment_the_bank_has_not_answered_shows_processing_until_it_resolves(
    tv: AppDriver, world: World
) -> None:
    world.gateway_tool(
        "mandate",
        "bind",
        "--household",
        world.household["household_no"],
        "--bank-token",
        BANK_CARD_TOKEN,
        "--card-masked",
        "622202******1234",
        "--per-payment-limit-fen",
        "500000",
        "--monthly-limit-fen",
        "2000000",
    )
    _home(tv)
    account = next(
        a for a in tv.app.home_vm.accounts if a["amount"] and a["amount"] != BIG_BILL_SHOWN
    )
    tv.focus_on(f"account:{account['account_id']}")
    tv.key(ENTER)
    tv.wait_screen("bills")
    tv.key(ENTER)
    state = tv.wait_screen("confirm")
    # Two ways to pay: the default (the wallet) preselected, yellow changes it.
    assert tv.app.pay_vm.funding_choices == 2 and tv.app.pay_vm.funding == "钱包"
    assert "更换付款方式" in state["texts"]
    tv.press("yellow")
    state = tv.wait_screen("confirm")
    assert tv.app.pay_vm.funding == "银行卡 622202******1234"
    assert "银行卡 622202******1234" in state["texts"]
    tv.screenshot("confirm-card-zh_CN")
    # The bank takes the debit but does not answer in time: the gateway says processing.
    faults = requests.post(
        world.bank_url + "/control/faults", json={"timeout_after_debit": True}, timeout=10
    )
    faults.raise_for_status()
    try:
        tv.type_digits("246813")
        tv.key(ENTER)
        state = tv.wait_screen("state", timeout=60)
        assert state["state"] == "processing"
        assert "处理中" in state["texts"]
        (entry,) = tv.app.services.journal.unconfirmed()  # kept signed, not lost
        assert entry.authorization is not None
        # What the dongle signed names the card.
        assert entry.authorization["display_text"].endswith("付款方式：银行卡 622202******1234")
        tv.screenshot("state-processing-zh_CN")
        tv.app.controller.open_history()
        state = tv.wait_screen("history", timeout=60)
        row = next(p for p in tv.app.history_vm.payments if p["key"] == entry.payment_id)
        assert row["status"] == "processing"
        # Home does not blame the network for a payment the bank is still answering.
        state = _home(tv)
        assert "1 笔缴费已签名，正在处理中，无需其他操作" in state["texts"]
        assert not any("等待网络" in text for text in state["texts"])
        tv.app.controller.open_history()
        tv.wait_screen("history", timeout=60)
    finally:
        requests.delete(world.bank_url + "/control/faults", timeout=10).raise_for_status()
    # Resubmitting the same authorization is how the box learns the bank's answer.
    tv.wait_for(
        lambda _s: tv.app.services.journal.get(entry.local_id).state == "succeeded",
        "the payment to resolve",
        timeout=60,
    )
    tv.wait_for(
        lambda _s: any(
            p["key"] == entry.payment_id and p["status"] == "succeeded"
            for p in tv.app.history_vm.payments
        ),
        "the history to show it paid",
        timeout=30,
    )
