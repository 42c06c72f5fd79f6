"""买电 on the TV, as the household sees it: the amount and its kWh, the rules' refusals before the
PIN, the purchase card written in the dongle's slot (补写卡 after the card was pulled out or the
box restarted: the meter credited once), the token shown identically after a restart.

The real app, gateway, daemon and dongle (tests/tvapp/world.py); the purchase card is a virtual
card issued with the gateway's vending key and put into the dongle's card slot through the
virtual cable; the card meter is the emulator's, fed the same card file. Each test sets up what
it looks at; the tests share one app (Kivy allows one window per process) and run in file order.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from emulator.card.issue import issue_card
from emulator.card.virtual import VirtualPurchaseCard
from emulator.meters.card_meter import VirtualCardMeter
from protocol.card import PurchaseRecord, vending_master_key
from tests.tvapp.driver import AppDriver
from tests.tvapp.world import World
from tvapp.services.container import Services
from tvapp.services.prepaid import PrepaidApi
from tvapp.services.purchases import PurchaseOrder
from tvapp.ui.controller import Controller
from tvapp.ui.purchase_confirmation import purchase_confirmation
from tvapp.ui.translate import tr

ENTER = 13
BILLER, BILLER_NAME = "TEST-PREPAID", "测试预付费供电"
CARD_ACCOUNT, TOKEN_ACCOUNT = "3300123456", "3300123457"
CARD_METER_NO, TOKEN_METER_NO = "330012345601", "33001234567"
CARD_SERIAL = bytes.fromhex("5456500000000001")
TARIFF = [
    {"upto_wh": 2_160_000, "price_milli_fen_per_kwh": 56_030},
    {"upto_wh": 4_200_000, "price_milli_fen_per_kwh": 61_030},
    {"upto_wh": None, "price_milli_fen_per_kwh": 86_030},
]
pytestmark = pytest.mark.timeout(300)


def _home(tv: AppDriver) -> dict[str, Any]:
    tv.press("home")
    return tv.wait_screen("home")


def _wait_idle(tv: AppDriver, screen: str) -> dict[str, Any]:
    return tv.wait_for(
        lambda s: s["screen"] == screen and not tv.app.controller.worker.busy,
        f"screen {screen}, idle",
    )


@pytest.fixture(scope="module")
def meters(tv: AppDriver, world: World, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A card meter and a token meter of TEST-PREPAID bound to the household, the purchase card
    issued for the card meter and put into the dongle's slot, the card meter itself."""
    tmp = tmp_path_factory.mktemp("prepaid")
    name = world.household["name"]
    bills = [
        {
            "biller_code": BILLER,
            "biller_name": BILLER_NAME,
            "utility": "electricity",
            "account_no": number,
            "holder_name": name,
            "address": "杭州市拱墅区建设路45号",
            "bill_ref": f"{BILLER}-{number}",
            "period": "2026-02",
            "amount_fen": 100,
            "currency": "CNY",
            "due_date": "2026-03-15",
            "usage_quantity": 1,
        }
        for number in (CARD_ACCOUNT, TOKEN_ACCOUNT)
    ]
    path = tmp / "bills.json"
    path.write_text(json.dumps(bills, ensure_ascii=False))
    world.gateway_tool("bills", "import", str(path), "--format", "json")
    for number in (CARD_ACCOUNT, TOKEN_ACCOUNT):
        tv.app.services.session.call(
            lambda gw, n=number: gw.bind_account("electricity", n, holder_name=name)
        )
    world.gateway_tool("prepaid", "rules", "set", BILLER, "--tariff", json.dumps(TARIFF))
    serial = CARD_SERIAL.hex()
    world.gateway_tool(
        "prepaid", "meter", "add", CARD_ACCOUNT, "--kind", "card", "--meter-no", CARD_METER_NO,
        "--card-serial", serial,
    )  # fmt: skip
    world.gateway_tool(
        "prepaid", "meter", "add", TOKEN_ACCOUNT, "--kind", "token", "--meter-no", TOKEN_METER_NO,
        "--sgc", "123456", "--ti", "1", "--krn", "1",
    )  # fmt: skip
    world.gateway_tool(
        "wallet", "credit", "--household", world.household["household_no"],
        "--amount-fen", "1000000", "--reference", "prepaid-tests",
    )  # fmt: skip
    master = vending_master_key((world.gateway_state / "vending.key").read_bytes(), BILLER)
    card_file = tmp / "card.json"
    issue_card(serial=CARD_SERIAL, biller=BILLER, meter_no=CARD_METER_NO, master=master,
               path=card_file)  # fmt: skip
    meter = VirtualCardMeter(CARD_METER_NO, master, tmp / "meter.json")
    # The household first shows the fresh card to its meter: the write-back the gateway asks for.
    meter.insert(VirtualPurchaseCard.load(card_file))
    world.cable.control().card_insert(world.serial, card_file)
    return {"card_file": card_file, "meter": meter}


def _open_meter(tv: AppDriver, kind: str) -> dict[str, Any]:
    """Home -> 买电 -> the meter of ``kind``, with arrows and OK."""
    _home(tv)
    tv.focus_on("buy")
    tv.key(ENTER)
    _wait_idle(tv, "meters")
    meter = next(
        m for m in tv.app.prepaid_vm.meters if m["kind"] == kind and m["biller"] == BILLER_NAME
    )
    tv.wait_screen("meters")
    tv.focus_on(f"meter:{meter['meter_id']}")
    tv.key(ENTER)
    return tv.wait_screen("buy")


def _choose_preset(tv: AppDriver, fen: int) -> dict[str, Any]:
    tv.focus_on(f"preset:{fen}")
    tv.key(ENTER)
    return tv.wait_for(lambda _s: tv.app.prepaid_vm.quote_state == "ready", "the quote")


def _gateway_purchase(tv: AppDriver, purchase_id: str) -> Any:
    return tv.app.services.session.call(lambda gw: PrepaidApi.purchase(gw, purchase_id))


def _card(meters: dict) -> PurchaseRecord:
    return PurchaseRecord.parse(VirtualPurchaseCard.load(meters["card_file"]).transmit(
        bytes.fromhex("00b0820020"))[:-2])  # fmt: skip


def test_a_rules_refusal_is_said_in_words_and_never_reaches_the_pin(
    tv: AppDriver, meters: dict
) -> None:
    state = _open_meter(tv, "card")
    assert "测试预付费供电  表号 " + tv.app.prepaid_vm.meter_no in " ".join(state["texts"])
    tv.type_digits("7")  # ¥7: below the utility's ¥10 minimum
    state = tv.wait_screen("buy")
    assert "每次最少购买 ¥10.00" in state["texts"]
    assert "buy:next" not in state["focusables"]
    tv.press("green")  # Next, by its colour key: nothing happens
    tv.type_digits("5")  # ¥75: not in steps of ¥10
    state = tv.wait_screen("buy")
    assert "购买金额须为 ¥10.00 的整数倍" in state["texts"]
    tv.press("green")
    tv.type_digits("0000")  # ¥750000: above the most at once
    state = tv.wait_screen("buy")
    assert "每次最多购买 ¥1,000.00" in state["texts"]
    tv.press("green")
    assert tv.state()["screen"] == "buy"
    assert tv.app.controller._order is None  # no purchase made, no PIN asked
    for _ in range(6):
        tv.press("back")  # Back deletes the digits, one at a time
    assert tv.app.prepaid_vm.digits == ""
    tv.screenshot("buy-refused-zh_CN")


def test_card_purchase_shown_signed_charged_alike_card_pulled_then_written_once(
    tv: AppDriver, world: World, meters: dict
) -> None:
    _open_meter(tv, "card")
    state = _choose_preset(tv, 10000)
    vm = tv.app.prepaid_vm
    energy = vm.energy
    assert f"可购电量 {energy}" in tv.wait_screen("buy")["texts"]
    assert vm.tiers and vm.tiers[0]["price"] == "0.5603"
    tv.screenshot("buy-quote-zh_CN")
    tv.focus_on("buy:next")
    tv.key(ENTER)
    state = tv.wait_screen("confirm", timeout=30)
    assert {"确认购电", "¥100.00", energy, "表号"} - set(state["texts"]) <= {"表号"}
    assert tv.app.pay_vm.amount == "¥100.00" and tv.app.pay_vm.period == energy
    tv.screenshot("confirm-purchase-zh_CN")
    # The card is pulled out after the payment, between the two APDUs of the write-card block
    # (three reads and the challenge come first).
    world.cable.control().card_fault(world.serial, "before", 6)
    tv.type_digits(world.pin)
    tv.key(ENTER)
    state = tv.wait_for(
        lambda _s: tv.app.sm.current == "cardwrite" and tv.app.prepaid_vm.write_outcome,
        "the card write to stop",
        timeout=60,
    )
    state = tv.wait_screen("cardwrite")
    assert tv.app.prepaid_vm.write_outcome == "incomplete"
    assert "写卡未完成" in state["texts"] and state["focus"] == "rewrite"
    tv.screenshot("cardwrite-incomplete-zh_CN")
    (made,) = [f for f in tv.app.controller._fulfilments.unfinished() if f.kind == "card"]
    assert made.state == "writing"
    # What was shown is what was signed and what the gateway charged.
    entry = next(e for e in tv.app.services.journal.entries() if e.payment_id == made.payment_id)
    text = entry.authorization["display_text"]
    assert f"电量：{energy}" in text.split("\n") and "金额：¥100.00" in text.split("\n")
    purchase = _gateway_purchase(tv, made.purchase_id)
    assert (purchase.amount_fen, purchase.fulfilment) == (10000, "pending")
    assert f"{purchase.energy_wh // 1000}.{purchase.energy_wh % 1000:03d} kWh" == energy
    payment = tv.app.services.session.call(lambda gw: gw.payment(made.payment_id))
    assert (payment.amount_fen, payment.status) == (10000, "succeeded")
    # Back, Home: the paid purchase is not lost; Home says so.
    state = _home(tv)
    tv.wait_for(lambda _s: tv.app.prepaid_vm.unwritten == 1, "Home to count it")
    assert "1 笔购电已付款、尚未入表：请打开“买电”完成" in tv.wait_screen("home")["texts"]
    # The card back in the slot; 补写卡 from the meter's buy screen, with OK.
    world.cable.control().card_insert(world.serial, meters["card_file"])
    state = _open_meter(tv, "card")
    assert state["focus"] == "resume" and "buy:next" not in state["focusables"]
    tv.key(ENTER)
    tv.wait_for(
        lambda _s: tv.app.prepaid_vm.write_outcome == "written", "the card written", timeout=60
    )
    assert "写卡成功：请把购电卡插入电表" in tv.wait_screen("cardwrite")["texts"]
    tv.screenshot("cardwrite-written-zh_CN")
    assert _gateway_purchase(tv, made.purchase_id).fulfilment == "done"
    assert _card(meters).count == 1
    # The meter credits it once, however often the card is inserted.
    meter = meters["meter"]
    before = meter.balance_fen
    world.cable.control().card_remove(world.serial)
    meter.insert(VirtualPurchaseCard.load(meters["card_file"]))
    meter.insert(VirtualPurchaseCard.load(meters["card_file"]))
    assert meter.balance_fen - before == 10000 and meter.count == 1
    world.cable.control().card_insert(world.serial, meters["card_file"])


def _restart(tv: AppDriver) -> None:
    """The box restarted: the app's services and controller built afresh on the same state."""
    old = tv.app.controller
    if old._subscription is not None:
        old._subscription.close()
    services = Services.build(tv.app.settings)
    tv.app.services = services
    tv.app.controller = Controller(tv.app, services)
    tv.app.controller.watch_dongle()
    tv.app.controller.start()
    tv.wait_screen("home", timeout=60)


def test_a_restart_between_payment_and_writing_offers_to_write_the_card(
    tv: AppDriver, world: World, meters: dict
) -> None:
    # Paid through the services, as the app does, and the box stops before it writes the card.
    controller = tv.app.controller
    meter = next(
        m for m in controller._meters.values() if m.kind == "card" and m.biller_code == BILLER
    )
    card = controller._card_writer.read()
    quote = tv.app.services.session.call(
        lambda gw: PrepaidApi.quote(gw, meter.meter_id, 5000, "CNY")
    )
    order = PurchaseOrder(meter, quote, card)
    prepared = controller._purchases.prepare(order)
    shown = purchase_confirmation(order, tr._)
    receipt = tv.app.services.payments.pay(prepared, world.pin, shown.text, lambda _step: None)
    controller._purchases.paid(receipt.payment_id)
    _restart(tv)
    tv.wait_for(lambda _s: tv.app.prepaid_vm.unwritten == 1, "Home to count it")
    # A new purchase for that meter is blocked, with what to do.
    state = _open_meter(tv, "card")
    assert (
        "这块电表有一笔购电已付款、尚未写卡。请插入购电卡，选择“补写卡”；写好后再买。"
        in state["texts"]
    )
    tv.screenshot("buy-pending-card-zh_CN")
    tv.key(ENTER)
    tv.wait_for(
        lambda _s: tv.app.prepaid_vm.write_outcome == "written", "the card written", timeout=60
    )
    assert _card(meters).count == 2
    world.cable.control().card_remove(world.serial)
    before = meters["meter"].balance_fen
    meters["meter"].insert(VirtualPurchaseCard.load(meters["card_file"]))
    assert meters["meter"].balance_fen - before == 5000
    world.cable.control().card_insert(world.serial, meters["card_file"])


def test_a_token_is_shown_in_groups_and_the_same_after_a_restart(
    tv: AppDriver, world: World, meters: dict
) -> None:
    _open_meter(tv, "token")
    _choose_preset(tv, 5000)
    tv.focus_on("buy:next")
    tv.key(ENTER)
    tv.wait_screen("confirm", timeout=30)
    tv.type_digits(world.pin)
    tv.key(ENTER)
    tv.wait_for(lambda _s: tv.app.prepaid_vm.token_state == "shown", "the token", timeout=60)
    state = tv.wait_screen("token")
    token = tv.app.prepaid_vm.token
    groups = token.split(" ")
    assert len(groups) == 5 and all(len(g) == 4 and g.isdigit() for g in groups)
    assert token in state["texts"]
    tv.screenshot("token-zh_CN")
    tv.press("yellow")  # read it aloud
    said = tv.state()["texts"]
    if shutil.which("espeak-ng") is None:
        assert "本机未安装朗读功能（espeak-ng）：请看屏幕上的数字" in said
    made = tv.app.controller._fulfilments.tokens()[0]
    assert _gateway_purchase(tv, made.purchase_id).token == made.token == token.replace(" ", "")
    _restart(tv)
    _home(tv)
    tv.focus_on("buy")
    tv.key(ENTER)
    tv.wait_screen("meters")
    tv.press("yellow")  # the token history
    state = tv.wait_screen("token")
    assert any(text.endswith("   " + token) for t in state["texts"] for text in t.split("\n"))
    assert _gateway_purchase(tv, made.purchase_id).token == made.token
