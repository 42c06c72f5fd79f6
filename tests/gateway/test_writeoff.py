"""Write-off at the utility through real processes: the gateway (HTTP), the dispatcher
(``tvpay-gateway dispatch``) and the utility simulator, on SQLite and PostgreSQL. Time moves by
the clock file both processes read; nothing here sleeps to wait for a retry."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.outbox import MAX_DELAY
from gateway.writeoff import UtilityAnswer, record_answer
from tests.emulator.utility import utility_process
from tests.gateway.helpers import GatewayUnderTest, wait_until
from tests.gateway.writeoff_env import BILLER, WriteoffEnv


@pytest.fixture
def env(gw: GatewayUnderTest, tmp_path: Path) -> Iterator[WriteoffEnv]:
    with utility_process(tmp_path / "utility", gw.ctx.keys.receipt_public_pem.encode()) as utility:
        running = WriteoffEnv(gw, utility, tmp_path)
        running.connect()
        yield running


def wallet_balance(env: WriteoffEnv, token: str) -> int:
    sources = env.gw.call("GET", "/api/v1/funding-sources", token).json()["funding_sources"]
    return next(s["balance_fen"] for s in sources if s["kind"] == "wallet")


def test_a_paid_bill_is_written_off_and_the_payment_credited(env: WriteoffEnv) -> None:
    payment_id, token = env.pay()
    assert env.payment(payment_id, token)["status"] == "succeeded"
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    utility_says = requests.get(f"{env.utility.url}/writeoffs/{payment_id}", timeout=10).json()
    shown = env.payment(payment_id, token)
    assert shown["status"] == "credited"
    assert shown["utility_ref"] == utility_says["utility_ref"]
    assert shown["credited_at"] is not None
    day = shown["credited_at"][:10]
    statement = requests.get(f"{env.utility.url}/statements/{day}.csv", timeout=10).text
    assert [r["payment_id"] for r in csv.DictReader(io.StringIO(statement))] == [payment_id]
    assert env.dispatch() == {"delivered": 0, "failed": 0}
    assert env.ledger_problems() == []


def test_utility_down_for_hours_then_back(env: WriteoffEnv) -> None:
    payment_id, token = env.pay()
    env.utility.control("POST", "/control/faults", {"down": True})
    for _ in range(8):  # hours of retries, each as soon as it comes due
        assert env.dispatch() == {"delivered": 0, "failed": 1}
        row = env.outbox(payment_id)
        now = int(env.clock_file.read_text())
        assert now < row.next_attempt_at <= now + MAX_DELAY
        assert "HTTP 503" in row.last_error
        env.utility.set_clock(row.next_attempt_at)
    assert env.outbox(payment_id).attempts == 8
    assert env.payment(payment_id, token)["status"] == "succeeded"
    env.utility.control("DELETE", "/control/faults")
    env.utility.set_clock(env.outbox(payment_id).next_attempt_at)
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    assert env.payment(payment_id, token)["status"] == "credited"


def test_slow_utility_answers_within_the_timeout_or_the_retry_gets_the_same_ack(
    env: WriteoffEnv,
) -> None:
    first, token = env.pay()
    env.utility.control("POST", "/control/faults", {"slow": 0.5})
    assert env.dispatch("--timeout", "10") == {"delivered": 1, "failed": 0}
    second, token2 = env.pay()
    env.utility.control("POST", "/control/faults", {"slow": 600})
    assert env.dispatch("--timeout", "1") == {"delivered": 0, "failed": 1}
    assert "UtilityUnreachable" in env.outbox(second).last_error
    env.utility.control("DELETE", "/control/faults")  # the held request now writes the bill off
    env.utility.set_clock(env.outbox(second).next_attempt_at)
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    assert env.payment(first, token)["status"] == "credited"
    assert env.payment(second, token2)["status"] == "credited"
    assert env.utility.state()["writeoffs"]["credited"] == 2


def test_an_acknowledgement_heard_twice_moves_the_payment_once(env: WriteoffEnv) -> None:
    payment_id, token = env.pay()
    env.utility.control("POST", "/control/faults", {"ack_twice": True})
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    credited = env.payment(payment_id, token)
    checked = env.gw.call("POST", f"/api/v1/payments/{payment_id}/crediting-check", token)
    assert checked.status_code == 200, checked.text
    answer = checked.json()
    assert answer["utility_says"] == "credited"
    assert answer["utility_ref"] == credited["utility_ref"]
    assert answer["payment"] == credited  # same ref, same credited_at: nothing moved
    assert env.ledger_problems() == []


@pytest.mark.parametrize("reason", ["account_closed", "bill_paid_elsewhere"])
def test_a_rejected_writeoff_refunds_the_wallet(env: WriteoffEnv, reason: str) -> None:
    payment_id, token = env.pay()
    paid_balance = wallet_balance(env, token)
    env.utility.control("POST", "/control/faults", {"reject": {"count": 1, "reason": reason}})
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    shown = env.payment(payment_id, token)
    assert shown["status"] == "refunded"
    assert shown["refund_reason"] == reason and shown["refunded_at"] is not None
    assert wallet_balance(env, token) == paid_balance + shown["amount_fen"]
    bills = env.gw.call("GET", "/api/v1/bills?status=all", token).json()["bills"]
    assert [b["status"] for b in bills] == (
        ["paid"] if reason == "bill_paid_elsewhere" else ["unpaid"]
    )
    assert env.ledger_problems() == []
    # A late repeat of the rejection (the household asks) refunds nothing more.
    checked = env.gw.call("POST", f"/api/v1/payments/{payment_id}/crediting-check", token)
    assert checked.json()["utility_says"] == "rejected"
    assert wallet_balance(env, token) == paid_balance + shown["amount_fen"]
    assert env.ledger_problems() == []


def test_a_closed_account_is_refused_before_the_pin_after_its_first_rejection(
    env: WriteoffEnv,
) -> None:
    payment_id, token = env.pay()
    env.utility.control(
        "POST", "/control/faults", {"reject": {"count": 1, "reason": "account_closed"}}
    )
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    assert env.payment(payment_id, token)["status"] == "refunded"
    (account,) = env.gw.call("GET", "/api/v1/accounts", token).json()["accounts"]
    assert account["closed"] is True
    (bill,) = env.gw.call("GET", "/api/v1/bills", token).json()["bills"]
    again = env.gw.create_payment(token, bill)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "account_closed"
    assert "nothing was charged" in again.json()["error"]["message"]
    assert env.ledger_problems() == []


@pytest.mark.parametrize("fault", [{"slow": 3600}, {"timeout_after_writeoff": True}])
def test_a_dispatcher_killed_mid_delivery_is_finished_by_another(
    env: WriteoffEnv, fault: dict[str, object]
) -> None:
    """Killed while its POST waits before the write-off (slow) or after it (no answer yet)."""
    payment_id, token = env.pay()
    env.utility.control("POST", "/control/faults", fault)
    victim = subprocess.Popen(
        env.dispatcher_argv("--once", "--timeout", "600", "--lease", "900"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: env.utility.state()["held"] == 1, 60, "the POST never arrived")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    wrote_off = env.utility.state()["writeoffs"]["credited"]
    assert wrote_off == (1 if "timeout_after_writeoff" in fault else 0)
    env.utility.control("DELETE", "/control/faults")
    assert env.dispatch() == {"delivered": 0, "failed": 0}  # the dead one's lease still holds
    assert env.payment(payment_id, token)["status"] == "succeeded"
    env.utility.advance(901)
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    shown = env.payment(payment_id, token)
    assert shown["status"] == "credited"
    state = env.utility.state()["writeoffs"]
    assert state["credited"] == 1 and state["notifications"] == 2
    assert (
        shown["utility_ref"]
        == requests.get(f"{env.utility.url}/writeoffs/{payment_id}", timeout=10).json()[
            "utility_ref"
        ]
    )
    assert env.ledger_problems() == []


def test_two_dispatchers_racing_deliver_each_message_once(env: WriteoffEnv) -> None:
    payments = [env.pay() for _ in range(6)]
    racers = [
        subprocess.Popen(
            env.dispatcher_argv("--once", "--workers", "2", "--batch", "1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    totals = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0 and "Traceback" not in err, err
        totals.append(out.strip().splitlines()[-1])
    delivered = sum(int(t.split('"delivered": ')[1].split(",")[0]) for t in totals)
    assert delivered == 6
    assert env.utility.state()["writeoffs"] == {"credited": 6, "rejected": 0, "notifications": 6}
    assert {env.payment(p, t)["status"] for p, t in payments} == {"credited"}


@pytest.mark.parametrize("hostile", ["garbage_json", "huge_body", "wrong_payment_id"])
def test_hostile_answers_are_typed_errors_and_retried(env: WriteoffEnv, hostile: str) -> None:
    payment_id, token = env.pay()
    env.utility.control("POST", "/control/faults", {"hostile": hostile})
    assert env.dispatch() == {"delivered": 0, "failed": 1}
    assert env.outbox(payment_id).last_error.startswith("UtilityAnswerInvalid: ")
    assert env.payment(payment_id, token)["status"] == "succeeded"
    env.utility.control("DELETE", "/control/faults")
    env.utility.set_clock(env.outbox(payment_id).next_attempt_at)
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    assert env.payment(payment_id, token)["status"] == "credited"


def test_an_answer_for_an_unknown_payment_is_ignored(env: WriteoffEnv) -> None:
    outcome = env.gw.ctx.db.write(
        lambda s: record_answer(s, "pay_" + "f" * 32, UtilityAnswer("credited", "UT1"), 1)
    )
    assert outcome == "unknown_payment"


def test_a_biller_without_notify_url_waits_with_a_clear_error(env: WriteoffEnv) -> None:
    payment_id, token = env.pay()
    unset = subprocess.run(
        [*env.dispatcher_argv()[:7], "billers", "notify-url", "none", BILLER],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unset.returncode == 0, unset.stderr
    assert env.dispatch() == {"delivered": 0, "failed": 1}
    assert f"biller {BILLER} has no notify_url" in env.outbox(payment_id).last_error
    checked = env.gw.call("POST", f"/api/v1/payments/{payment_id}/crediting-check", token)
    assert checked.status_code == 503
    assert checked.json()["error"]["code"] == "utility_not_connected"
    bad = subprocess.run(
        [*env.dispatcher_argv()[:7], "billers", "notify-url", "ftp://x", "--all"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "must be an http(s) base URL" in bad.stderr


def test_crediting_check_says_not_yet_before_the_writeoff(env: WriteoffEnv) -> None:
    payment_id, token = env.pay()
    checked = env.gw.call("POST", f"/api/v1/payments/{payment_id}/crediting-check", token)
    assert checked.status_code == 200, checked.text
    assert checked.json()["utility_says"] == "not_yet"
    assert checked.json()["payment"]["status"] == "succeeded"
    env.utility.control("POST", "/control/faults", {"down": True})
    down = env.gw.call("POST", f"/api/v1/payments/{payment_id}/crediting-check", token)
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "utility_unreachable"


def test_a_payment_refunded_by_staff_before_dispatch_is_never_written_off(
    env: WriteoffEnv,
) -> None:
    payment_id, token = env.pay()
    refund = env.gw.staff("POST", f"/payments/{payment_id}/refund", json={"reason": "customer"})
    assert refund.status_code == 200, refund.text
    assert env.dispatch() == {"delivered": 1, "failed": 0}  # done with: nothing to send
    unknown = requests.get(f"{env.utility.url}/writeoffs/{payment_id}", timeout=10)
    assert unknown.status_code == 404  # the utility never heard of it
    assert env.payment(payment_id, token)["status"] == "refunded"
    assert env.ledger_problems() == []


def test_a_staff_refund_waits_while_a_dispatcher_is_telling_the_utility(
    env: WriteoffEnv,
) -> None:
    payment_id, token = env.pay()
    before = wallet_balance(env, token)
    env.utility.control("POST", "/control/faults", {"slow": 3600})
    sender = subprocess.Popen(
        env.dispatcher_argv("--once", "--timeout", "600", "--lease", "900"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: env.utility.state()["held"] == 1, 60, "the POST never arrived")
        refund = env.gw.staff("POST", f"/payments/{payment_id}/refund", json={"reason": "customer"})
        assert (refund.status_code, refund.json()["error"]["code"]) == (409, "writeoff_in_flight")
        env.utility.control("DELETE", "/control/faults")  # the held write-off goes through
        assert sender.wait(60) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait(10)
    assert env.payment(payment_id, token)["status"] == "credited"
    assert wallet_balance(env, token) == before  # nothing given back behind the utility
    assert env.ledger_problems() == []


def test_a_credited_payment_is_not_refunded_behind_the_utility(env: WriteoffEnv) -> None:
    payment_id, token = env.pay()
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    before = wallet_balance(env, token)
    refund = env.gw.staff("POST", f"/payments/{payment_id}/refund", json={"reason": "customer"})
    assert (refund.status_code, refund.json()["error"]["code"]) == (409, "payment_credited")
    assert env.payment(payment_id, token)["status"] == "credited"
    assert wallet_balance(env, token) == before
    assert env.ledger_problems() == []
