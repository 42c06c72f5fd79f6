"""The TV app driven headless with remote keys against the real gateway, daemon and dongle.

The tests share one app and one household (Kivy allows one window per process) and run in
file order: the PIN-blocking test comes late because it blocks the household's dongle, and the
last one has staff unblock it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.signing import public_key_bytes
from tests.fixtures.dongles import TEST_PIN
from tests.tvapp.driver import AppDriver
from tests.tvapp.netcut import NetworkCut
from tests.tvapp.world import SPOUSE_ACCOUNT_NO, SPOUSE_BIND_CODE, World
from tvapp.services.records import CreatedPayment

ENTER = 13
pytestmark = pytest.mark.timeout(300)


def _home(tv: AppDriver) -> dict[str, Any]:
    tv.press("home")
    return tv.wait_screen("home")


def _electricity(tv: AppDriver) -> str:
    account = tv.app.home_vm.accounts[0]
    assert account["utility"] == "electricity"
    return f"account:{account['account_id']}"


def _open_account_with_unpaid_bill(tv: AppDriver) -> dict[str, Any]:
    """Home -> the first account that still has an unpaid bill, with arrows and OK."""
    _home(tv)
    for account in tv.app.home_vm.accounts:
        if account["amount"]:
            tv.focus_on(f"account:{account['account_id']}")
            tv.key(ENTER)
            return tv.wait_screen("bills")
    raise AssertionError("the demo household has no unpaid bill left")


def _to_confirm(tv: AppDriver) -> dict[str, Any]:
    state = _open_account_with_unpaid_bill(tv)
    assert state["focus"].startswith("bill:")  # lands on the oldest unpaid bill
    tv.key(ENTER)
    return tv.wait_screen("confirm")


def _journal_states(tv: AppDriver) -> list[str]:
    return [e.state for e in tv.app.services.journal.entries()]


def test_home_lists_accounts_electricity_first_and_dongle_ready(tv: AppDriver) -> None:
    state = tv.wait_screen("home", timeout=60)
    _electricity(tv)
    assert "支付盾已就绪" in state["texts"]
    assert any(t.startswith("户主：") and "*" in t for t in state["texts"])
    tv.screenshot("home-zh_CN")


def test_focus_reaches_every_control_on_home_bills_confirm(tv: AppDriver) -> None:
    _home(tv)
    assert set(tv.paths()) == set(tv.state()["focusables"])
    _to_confirm(tv)
    assert set(tv.paths()) == set(tv.state()["focusables"])
    tv.press("back")
    state = tv.wait_screen("bills")
    assert set(tv.paths()) == set(state["focusables"])


def test_whole_payment_with_the_remote(tv: AppDriver) -> None:
    state = _to_confirm(tv)
    amount = tv.app.pay_vm.amount
    assert amount.startswith("¥") and amount in state["texts"]
    tv.type_digits("246")
    tv.screenshot("confirm-zh_CN")
    tv.type_digits("813")
    assert tv.state()["focus"] == "pad:ok"  # a 6th digit moves the focus to Pay
    tv.key(ENTER)
    state = tv.wait_screen("receipt")
    assert "缴费成功" in state["texts"] and amount in state["texts"]
    assert tv.app.sm.current_screen.ids.qr.texture is not None
    assert tv.app.pay_vm.receipt_no.startswith("rcp_")
    # The receipt repeats, short, the hash of the confirm screen's text that the dongle signed.
    assert any(re.fullmatch(r"确认页摘要：[0-9A-F]{4}( [0-9A-F]{4}){3}", t) for t in state["texts"])
    assert _journal_states(tv)[0] == "succeeded"
    tv.screenshot("receipt-zh_CN")


def test_a_gateway_asking_to_sign_another_amount_is_stopped_before_the_pin(
    tv: AppDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = tv.app.services.session.gateway
    honest = gateway.create_payment

    def ten_times(*args: Any, **kwargs: Any) -> CreatedPayment:
        created = honest(*args, **kwargs)
        fields = {**created.sign_fields, "amount_fen": created.sign_fields["amount_fen"] * 10}
        return replace(created, sign_fields=fields)

    monkeypatch.setattr(gateway, "create_payment", ten_times)
    _open_account_with_unpaid_bill(tv)
    tv.key(ENTER)
    state = tv.wait_for(lambda s: s["state"] == "mismatch", "the payment-stopped screen")
    assert "缴费已停止" in state["texts"]
    assert "服务器返回的缴费信息与显示的账单不一致。未扣任何费用。" in state["texts"]
    assert _journal_states(tv)[0] == "refused"
    # Its one button sits centred under the text, not beside an invisible second one.
    screen = tv.app.sm.current_screen
    button = next(w for w in screen.walk() if getattr(w, "focus_id", "") == "primary")
    assert abs(button.center_x - screen.center_x) < 2
    tv.screenshot("state-mismatch-zh_CN")
    tv.press("ok")  # the only button: Home
    tv.wait_screen("home")


def test_a_key_agreement_not_signed_by_the_registered_key_gets_no_pin(tv: AppDriver) -> None:
    services = tv.app.services
    registered = services.session.dongle_key
    assert registered is not None
    # What the app sees when a daemon answers with its own key agreement: a signature that the
    # key the gateway registered does not verify.
    stranger = public_key_bytes(ec.generate_private_key(ec.SECP256R1()).public_key())
    retries = services.dongle.client.info().pin_retries
    services.dongle.expect(replace(registered, public_key=stranger))
    try:
        _to_confirm(tv)
        tv.type_digits(TEST_PIN)
        tv.key(ENTER)
        state = tv.wait_for(lambda s: s["state"] == "unverified", "the unverified screen")
    finally:
        services.dongle.expect(registered)
    assert "无法验证此支付设备" in state["texts"]
    assert "您的密码未被发送，也没有付款。请联系电信工作人员。" in state["texts"]
    assert services.dongle.client.info().pin_retries == retries  # no PIN try was spent
    tv.screenshot("state-unverified-zh_CN")
    tv.press("ok")
    tv.wait_screen("home")


def test_a_quick_payment_goes_from_confirm_to_receipt_without_drawing_progress(
    tv: AppDriver,
) -> None:
    from kivy.core.window import Window

    _to_confirm(tv)
    tv.type_digits("246813")
    drawn: list[str] = []

    def record(*_args: Any) -> None:
        if not drawn or drawn[-1] != tv.app.sm.current:
            drawn.append(tv.app.sm.current)

    controller = tv.app.controller
    controller.progress_delay = 60.0  # "quick" however loaded the machine running the test
    Window.bind(on_flip=record)
    try:
        tv.key(ENTER)
        tv.press("back", "home", "1")  # keys while it is being paid wait for the outcome
        tv.wait_screen("receipt")
    finally:
        Window.unbind(on_flip=record)
        controller.progress_delay = 0.1
    assert "progress" not in drawn and drawn[-1] == "receipt"
    assert _journal_states(tv)[0] == "succeeded"


def test_paid_bill_shows_as_paid_and_cannot_be_paid_again(tv: AppDriver) -> None:
    paid = tv.app.services.journal.entries()[0]
    _home(tv)
    for account in list(tv.app.home_vm.accounts):
        tv.app.controller.open_account(account["account_id"])
        tv.wait_screen("bills")
        rows = [b for b in tv.app.bills_vm.bills if b["bill_id"] == paid.bill_id]
        if rows:
            break
    row = rows[0]
    assert row["status"] == "paid"
    tv.app.sm.current_screen.set_focus(f"bill:{paid.bill_id}")
    assert tv.press("ok")["screen"] == "bills"


def test_wrong_pin_says_tries_left_and_the_right_one_still_pays(tv: AppDriver) -> None:
    _to_confirm(tv)
    tv.type_digits("135792")
    tv.key(ENTER)
    state = tv.wait_screen("confirm")
    assert "密码错误，还可以试 2 次" in state["texts"]
    tv.screenshot("confirm-wrong-pin-zh_CN")
    tv.type_digits("246813")
    tv.key(ENTER)
    tv.wait_screen("receipt")


def test_on_screen_pad_types_the_pin_with_arrows_and_ok(tv: AppDriver) -> None:
    _to_confirm(tv)
    for digit in "246813":
        tv.focus_on(f"pad:{digit}")
        tv.press("ok")
    assert tv.app.pay_vm.pin_length == 6
    tv.press("back")  # Back deletes the last digit first
    assert tv.app.pay_vm.pin_length == 5
    tv.focus_on("pad:3")
    tv.press("ok", "green")  # the green key pays
    tv.wait_screen("receipt")


def test_network_cut_after_signing_is_resubmitted_when_it_returns(
    tv: AppDriver, network: NetworkCut
) -> None:
    _to_confirm(tv)
    network.cut()
    try:
        tv.type_digits("246813")
        tv.key(ENTER)
        state = tv.wait_screen("state")
        assert state["state"] == "pending"
        signed = tv.app.services.journal.unconfirmed()
        assert len(signed) == 1
        counter = tv.app.services.dongle.client.info().counter
        tv.screenshot("state-pending-zh_CN")
        state = tv.press("ok")  # Home: the accounts cannot load while the network is down
        state = tv.wait_for(lambda s: s["state"] == "network_down", "the network-down screen")
        assert "无法连接支付平台" in state["texts"]
        tv.screenshot("state-network-down-zh_CN")
        tv.app.controller.open_history()
        state = tv.wait_screen("history")
        assert "等待网络" in state["texts"]  # offline history from the journal
        tv.screenshot("history-offline-zh_CN")
    finally:
        network.restore()
    tv.wait_for(
        lambda _s: not tv.app.services.journal.unconfirmed(), "the resubmission", timeout=30
    )
    entry = tv.app.services.journal.get(signed[0].local_id)
    assert entry.state == "succeeded"
    # Resubmitted, not signed again: the dongle's counter did not move.
    assert tv.app.services.dongle.client.info().counter == counter


def test_language_switch_rerenders_live(tv: AppDriver) -> None:
    _home(tv)
    tv.press("yellow")  # the legend's Settings key
    tv.wait_screen("settings")
    assert set(tv.paths()) == set(tv.state()["focusables"])
    tv.focus_on("lang:zh_TW")
    state = tv.press("ok")
    assert "設定" in state["texts"] and "语言" not in state["texts"]
    assert state["focus"] == "lang:zh_TW"
    tv.screenshot("settings-zh_TW")
    tv.focus_on("lang:en")
    state = tv.press("ok")
    assert "Settings" in state["texts"] and "Language" in state["texts"]
    tv.focus_on("lang:zh_CN")
    state = tv.press("ok")
    assert "设置" in state["texts"]


def _code_of(world: World, account_no: str) -> str:
    return next(
        a["bind_code"] for a in world.household["accounts"] if a["account_no"] == account_no
    )


def _to_bind_code(tv: AppDriver, utility: str, account_no: str) -> None:
    _home(tv)
    tv.app.controller.open_settings()
    tv.wait_screen("settings")
    tv.focus_on("bind:number")
    while tv.app.settings_vm.bind_number:
        tv.press("back")
    tv.focus_on(f"utility:{utility}")
    tv.press("ok")
    tv.type_digits(account_no)
    tv.press("yellow")
    tv.wait_screen("bindcode")


def test_spouse_held_account_binds_with_the_bind_code(tv: AppDriver) -> None:
    _to_bind_code(tv, "gas", SPOUSE_ACCOUNT_NO)
    tv.type_digits(SPOUSE_BIND_CODE[:5])
    tv.focus_on("code:1")
    state = tv.press("ok")  # the on-screen pad types too; the code stays masked
    tv.screenshot("bindcode-zh_CN")
    assert SPOUSE_BIND_CODE[:5] not in " ".join(state["texts"])
    tv.app.controller.bind_code_delete()
    tv.type_digits(SPOUSE_BIND_CODE[-1])
    assert tv.app.sm.current_screen.focused_id == "code:ok"
    tv.press("ok")
    tv.wait_for(lambda s: "账户已绑定" in s["texts"] and s["screen"] == "settings", "the binding")
    tv.wait_for(
        lambda _s: any(a["account"].endswith("3456") for a in tv.app.home_vm.accounts),
        "the new account",
    )


def test_wrong_bind_code_shows_the_gateways_message(tv: AppDriver) -> None:
    _to_bind_code(tv, "gas", SPOUSE_ACCOUNT_NO)
    tv.type_digits("000000")
    tv.press("green")
    state = tv.wait_for(lambda s: "查询密码错误" in s["texts"], "the refusal")
    tv.screenshot("bindcode-wrong-zh_CN")
    assert state["screen"] == "bindcode"
    assert any("printed on the" in t and "tries left" in t for t in state["texts"])
    assert tv.app.settings_vm.bind_code_length == 0  # cleared for the next try


def test_binding_an_already_bound_account_is_refused_in_words(tv: AppDriver, world: World) -> None:
    # The household's own electricity account, bound already.
    _to_bind_code(tv, "electricity", "9139099603")
    tv.type_digits(_code_of(world, "9139099603"))
    tv.press("green")
    tv.wait_for(lambda s: "该户号已经绑定" in s["texts"], "the refusal")
    assert tv.app.settings_vm.bind_number == "9139099603"  # kept, to correct and retry


def test_account_without_a_code_binds_by_the_configured_name(tv: AppDriver, world: World) -> None:
    _home(tv)
    before = len(tv.app.home_vm.accounts)
    # Issued before bind codes: the box's configured household name is the fallback proof.
    _to_bind_code(tv, "electricity", world.extra_account_no)
    tv.type_digits("123456")
    tv.press("green")
    state = tv.wait_for(lambda s: "账户已绑定" in s["texts"], "the binding")
    tv.screenshot("settings-bound-zh_CN")
    assert state["screen"] == "settings"
    tv.wait_for(lambda _s: len(tv.app.home_vm.accounts) == before + 1, "the new account")


def test_back_never_exits_by_accident(tv: AppDriver) -> None:
    _home(tv)
    state = tv.press("back")
    assert state["screen"] == "exit" and state["focus"] == "stay"
    tv.screenshot("exit-zh_CN")
    assert tv.press("back")["screen"] == "home"
    tv.press("back")
    assert tv.press("ok")["screen"] == "home"  # OK on the pre-selected "Stay"


def test_unplugged_dongle_shows_insert_screen_and_payment_resumes(
    tv: AppDriver, world: World
) -> None:
    _to_confirm(tv)
    tv.type_digits("2468")
    world.cable.control().unplug(world.serial)
    state = tv.wait_for(lambda s: s["state"] == "no_dongle", "the no-dongle screen")
    assert "请插入支付盾" in state["texts"]
    tv.screenshot("state-no-dongle-zh_CN")
    open_entry = tv.app.services.journal.entries()[0]
    assert open_entry.state == "created"
    world.cable.control().plug(world.serial)
    tv.wait_screen("home", timeout=30)
    _to_confirm(tv)
    tv.type_digits("246813")
    tv.key(ENTER)
    tv.wait_screen("receipt")
    # The same journaled payment was finished: no second payment for that bill.
    entries = [e for e in tv.app.services.journal.entries() if e.bill_id == open_entry.bill_id]
    assert [(e.local_id, e.state) for e in entries] == [(open_entry.local_id, "succeeded")]


def test_keys_pressed_fast_and_during_loading_keep_the_app_consistent(tv: AppDriver) -> None:
    _home(tv)
    for action in ["ok", "back", "down", "ok", "left", "home", "right", "ok", "back"] * 5:
        tv.app.press(action)
    state = tv.wait_for(lambda s: not tv.app.controller.worker.busy, "quiet")
    assert state["focus"] in state["focusables"]


def _visit(tv: AppDriver, screen: str, name: str) -> None:
    """On ``screen``: the arrows reach every control; save its screenshot as ``name``."""
    state = tv.wait_screen(screen)
    assert set(tv.paths()) == set(state["focusables"]), screen
    assert state["focus"] in state["focusables"]  # something is always focused
    tv.screenshot(name)


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW", "en"])
def test_every_screen_in_every_language(tv: AppDriver, network: NetworkCut, language: str) -> None:
    _home(tv)
    tv.app.controller.switch_language(language)
    _visit(tv, "home", f"home-{language}")
    _open_account_with_unpaid_bill(tv)
    _visit(tv, "bills", f"bills-{language}")
    tv.key(ENTER)
    _visit(tv, "confirm", f"confirm-{language}")
    tv.press("red")  # cancel: back to the bills, nothing signed
    tv.wait_screen("bills")
    tv.app.controller.open_history()
    _visit(tv, "history", f"history-{language}")
    paid = next(p["key"] for p in tv.app.history_vm.payments if p["status"] == "succeeded")
    tv.focus_on(f"payment:{paid}")
    tv.press("ok")
    _visit(tv, "receipt", f"receipt-{language}")
    _home(tv)
    tv.press("yellow")
    _visit(tv, "settings", f"settings-{language}")
    _home(tv)
    tv.press("back")
    _visit(tv, "exit", f"exit-{language}")
    tv.press("ok")
    try:
        network.cut()
        tv.press("green")  # refresh while the network is down
        tv.wait_for(lambda s: s["state"] == "network_down", "the network-down screen")
        _visit(tv, "state", f"state-network-down-{language}")
    finally:
        network.restore()
    tv.press("ok")  # Retry
    tv.wait_screen("home")
    tv.app.pay_vm.step = "signing"
    tv.app.controller.show("progress")  # the signing step itself is too quick to catch
    tv.screenshot(f"progress-{language}")
    tv.app.controller.go_home()


@pytest.fixture(autouse=True)
def _simplified_chinese_after_each_test(tv: AppDriver):
    yield
    tv.app.controller.switch_language("zh_CN")


def test_a_payment_confirmed_in_the_background_is_announced_and_in_history(
    tv: AppDriver, network: NetworkCut
) -> None:
    _to_confirm(tv)
    biller = tv.app.pay_vm.biller
    network.cut()
    try:
        tv.type_digits("246813")
        tv.key(ENTER)
        assert tv.wait_screen("state")["state"] == "pending"
        (signed,) = tv.app.services.journal.unconfirmed()
    finally:
        network.restore()
    tv.wait_for(
        lambda s: f"{biller}的缴费已确认" in s["texts"], "the confirmation notice", timeout=30
    )
    # The pending screen makes way for the household; the notice stays on.
    assert f"{biller}的缴费已确认" in tv.wait_screen("home")["texts"]
    tv.screenshot("notice-confirmed-zh_CN")
    tv.app.controller.open_history()
    tv.wait_screen("history")
    rows = {p["key"]: p["status"] for p in tv.app.history_vm.payments}
    assert rows[signed.payment_id] == "succeeded"


def _household_shown(tv: AppDriver, household: dict[str, Any]) -> bool:
    """Home shows ``household`` (its name and its bound accounts, masked)."""
    shown = {a["account"][-4:] for a in tv.app.home_vm.accounts}
    bound = {a["account_no"][-4:] for a in household["accounts"] if a["bound"]}
    name = tv.app.vm.household_name
    return tv.app.sm.current == "home" and name[:1] == household["name"][:1] and bound <= shown


def _wait_household(tv: AppDriver, household: dict[str, Any]) -> None:
    tv.wait_for(lambda _s: _household_shown(tv, household), f"household {household['name'][:1]}")


def _plug_back_the_household_dongle(tv: AppDriver, world: World) -> None:
    control = world.cable.control()
    control.unplug(world.other_serial)
    tv.wait_for(lambda s: s["state"] == "no_dongle", "the no-dongle screen")
    control.plug(world.serial)
    _wait_household(tv, world.household)


def test_another_dongle_plugged_in_after_home_shows_its_own_household(
    tv: AppDriver, world: World
) -> None:
    _home(tv)
    _wait_household(tv, world.household)
    control = world.cable.control()
    control.unplug(world.serial)
    tv.wait_for(lambda s: s["state"] == "no_dongle", "the no-dongle screen")
    tv.press("home")  # pressed before plugging the other dongle in
    try:
        control.plug(world.other_serial)
        _wait_household(tv, world.other_household)
        assert tv.app.services.session.dongle_id == world.other_serial
    finally:
        _plug_back_the_household_dongle(tv, world)


def test_refresh_opens_a_session_for_a_dongle_swapped_unseen(tv: AppDriver, world: World) -> None:
    _home(tv)
    _wait_household(tv, world.household)
    controller = tv.app.controller
    controller._subscription.close()  # the plug events get lost, e.g. a daemon restart
    try:
        control = world.cable.control()
        control.unplug(world.serial)
        control.plug(world.other_serial)
        world.daemon_sees({world.other_serial})
        tv.press("green")  # Refresh
        _wait_household(tv, world.other_household)
    finally:
        controller.watch_dongle()
        _plug_back_the_household_dongle(tv, world)


def _block_the_dongle(tv: AppDriver) -> dict[str, Any]:
    for _ in range(2):
        _to_confirm(tv)
        tv.type_digits("135792")
        tv.key(ENTER)
        tv.wait_screen("confirm")
    tv.type_digits("135792")
    tv.key(ENTER)
    return tv.wait_for(lambda s: s["state"] == "pin_blocked", "the blocked screen")


def test_three_wrong_pins_block_the_dongle(tv: AppDriver) -> None:
    state = _block_the_dongle(tv)
    assert "请联系电信工作人员解锁" in " ".join(state["texts"])
    tv.screenshot("state-pin-blocked-zh_CN")


def test_a_staff_unblock_shows_the_dongle_ready_without_replugging(
    tv: AppDriver, world: World
) -> None:
    if tv.app.vm.dongle != "blocked":
        _block_the_dongle(tv)
    # Staff unblock it with their own tool on this box, through the daemon.
    world.staff("pin", "unblock", "--serial", world.serial, stdin=f"{world.puk}\n{world.pin}\n")
    state = tv.wait_for(
        lambda s: s["screen"] == "home" and "支付盾已就绪" in s["texts"], "the dongle ready"
    )
    assert tv.app.vm.dongle == "present"
    assert state["focus"] in state["focusables"]
