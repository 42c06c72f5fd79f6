"""Paying from a bank card under a direct-debit mandate, over real HTTP on both databases, with
the bank simulator as its own process: the money is taken once, whatever fails in between."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import pytest
import requests

from gateway.config import write_config
from tests.gateway.helpers import wait_until
from tests.gateway.mandate_world import MandateWorld

CLI = [sys.executable, "-m", "gateway.cli"]


def resolve(world: MandateWorld) -> subprocess.CompletedProcess[str]:
    """``tvpay-gateway bank resolve`` as an operator (or a dispatcher) runs it."""
    config = world.gw.ctx.config
    env = {**os.environ, "TVPAY_GATEWAY_BANK_URL": world.bank.url}
    return subprocess.run(
        [
            *CLI,
            "--state-dir",
            str(config.state_dir),
            "--database-url",
            config.effective_database_url,
            "bank",
            "resolve",
            "--older-than",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_mandate_payment_succeeds_and_the_bank_debits_once(world: MandateWorld) -> None:
    payer = world.payer(card_balance=100_000)
    bill = payer.bills[0]
    payment_id, auth = world.sign(payer, bill)
    answer = world.gw.authorize(payment_id, auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded"
    assert answer.json()["receipt"]["amount_fen"] == bill["amount_fen"]
    again = world.gw.authorize(payment_id, auth)
    assert again.json()["receipt"] == answer.json()["receipt"]
    assert [d["status"] for d in world.bank.debits(payment_id)] == ["ok"]
    assert world.bank.balance(payer.bank_token) == 100_000 - bill["amount_fen"]
    ledger = world.ledger(payment_id)
    assert (ledger["clearing"], ledger["payable"]) == (-bill["amount_fen"], bill["amount_fen"])
    assert ledger["outbox"] == ["utility.writeoff"] and ledger["problems"] == []
    assert world.bill_status(payer, bill) == "paid"


def test_too_little_on_the_card_fails_and_the_bill_is_payable_again(world: MandateWorld) -> None:
    payer = world.payer(card_balance=100)
    bill = payer.bills[0]
    payment_id, auth = world.sign(payer, bill)
    refused = world.gw.authorize(payment_id, auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "bank_refused"
    assert "nothing was taken" in refused.json()["error"]["message"]
    assert world.payment(payer, payment_id)["status"] == "failed"
    assert world.bill_status(payer, bill) == "unpaid"
    assert world.bank.balance(payer.bank_token) == 100
    assert world.ledger(payment_id) == {"clearing": 0, "payable": 0, "outbox": [], "problems": []}
    world.bank.account(payer.bank_token, 100_000)  # the household tops the card up, pays again
    second_id, second_auth = world.sign(payer, bill)
    assert world.gw.authorize(second_id, second_auth).status_code == 200
    assert world.bill_status(payer, bill) == "paid"


def test_over_the_per_payment_limit_is_refused_before_the_pin(world: MandateWorld) -> None:
    payer = world.payer(per_payment=5_000)
    refused = world.create(payer, payer.bills[0])
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "mandate_limit_exceeded"
    assert "¥50.00 per payment" in error["message"] and "wallet" in error["message"]
    assert world.bank.state()["debits"] == [] or all(
        d["bank_token"] != payer.bank_token for d in world.bank.state()["debits"]
    )


def test_over_the_monthly_limit_is_refused_before_the_pin(world: MandateWorld) -> None:
    payer = world.payer(per_payment=15_000, monthly=15_000)
    first, auth = world.sign(payer, payer.bills[0])
    assert world.gw.authorize(first, auth).status_code == 200
    refused = world.create(payer, payer.bills[1])
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "mandate_limit_exceeded"
    assert "monthly limit of ¥150.00 (¥49.99 left this month)" in error["message"]


def test_the_monthly_limit_holds_for_payments_created_before_it_was_reached(
    world: MandateWorld,
) -> None:
    payer = world.payer(per_payment=15_000, monthly=15_000)
    first, first_auth = world.sign(payer, payer.bills[0])
    second, second_auth = world.sign(payer, payer.bills[1])  # both created under the limit
    assert world.gw.authorize(first, first_auth).status_code == 200
    refused = world.gw.authorize(second, second_auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "mandate_limit_exceeded"
    assert world.bank.debits(second) == []


def test_a_debit_answered_too_late_stays_processing_then_resolves_once(
    world: MandateWorld,
) -> None:
    payer = world.payer(card_balance=100_000)
    bill = payer.bills[0]
    payment_id, auth = world.sign(payer, bill)
    world.bank.faults(timeout_after_debit=True)
    pending = world.gw.authorize(payment_id, auth)
    assert pending.status_code == 202
    assert pending.json() == {"payment_id": payment_id, "status": "processing"}
    assert world.payment(payer, payment_id)["status"] == "processing"
    assert world.bill_status(payer, bill) == "paid"  # held: no second payment for it meanwhile
    assert world.create(payer, bill).json()["error"]["code"] == "bill_already_paid"
    world.bank.clear_faults()
    run = resolve(world)
    assert run.returncode == 0, run.stderr
    assert f"{payment_id}\tsucceeded" in run.stdout
    assert world.payment(payer, payment_id)["status"] == "succeeded"
    assert len(world.bank.debits(payment_id)) == 1
    assert world.bank.balance(payer.bank_token) == 100_000 - bill["amount_fen"]
    assert world.ledger(payment_id)["problems"] == []
    assert world.gw.authorize(payment_id, auth).json()["status"] == "succeeded"


def test_a_bank_that_is_down_leaves_processing_until_it_is_back(world: MandateWorld) -> None:
    payer = world.payer()
    payment_id, auth = world.sign(payer, payer.bills[0])
    world.bank.faults(down=True)
    assert world.gw.authorize(payment_id, auth).status_code == 202
    still_down = resolve(world)
    assert still_down.returncode == 1 and "1 still processing" in still_down.stdout
    assert world.bank.debits(payment_id) == []
    world.bank.clear_faults()
    assert resolve(world).returncode == 0
    assert world.payment(payer, payment_id)["status"] == "succeeded"
    assert len(world.bank.debits(payment_id)) == 1


def test_the_same_authorization_sent_concurrently_debits_once(world: MandateWorld) -> None:
    payer = world.payer(card_balance=100_000)
    bill = payer.bills[0]
    payment_id, auth = world.sign(payer, bill)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: world.gw.authorize(payment_id, auth), range(6)))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    assert len({a.json()["receipt"]["receipt_no"] for a in answers}) == 1
    assert len(world.bank.debits(payment_id)) == 1
    assert world.bank.balance(payer.bank_token) == 100_000 - bill["amount_fen"]
    assert world.ledger(payment_id)["problems"] == []


@contextmanager
def gateway_process(world: MandateWorld) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The same gateway (state dir, database) as its own process, waiting up to 300 s for the
    bank: only the test decides when a held debit answer arrives."""
    config = replace(world.gw.ctx.config, bank_url=world.bank.url, bank_timeout_seconds=300)
    write_config(config)
    proc = subprocess.Popen(
        [*CLI, "--state-dir", str(config.state_dir), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("gateway listening on "), line
        yield line.split()[-1], proc
    finally:
        proc.kill()
        proc.wait(10)


def test_a_gateway_killed_between_the_debit_and_its_record_finishes_after_restart(
    world: MandateWorld,
) -> None:
    payer = world.payer(card_balance=100_000)
    bill = payer.bills[0]
    payment_id, auth = world.sign(payer, bill)
    world.bank.faults(timeout_after_debit=True)  # the bank debits, and holds its answer
    with gateway_process(world) as (url, proc), ThreadPoolExecutor(1) as pool:
        path = f"{url}/api/v1/payments/{payment_id}/authorize"
        sent = pool.submit(requests.post, path, json=auth, timeout=60)
        wait_until(lambda: world.bank.debits(payment_id) != [], 30, "the bank saw no debit")
        proc.kill()  # the bank took the money; the gateway never heard
        proc.wait(10)
        with pytest.raises(requests.ConnectionError):
            sent.result()
    assert world.payment(payer, payment_id)["status"] == "processing"
    world.bank.clear_faults()
    with gateway_process(world) as (url, _proc):
        # The box's journal sends the same authorization again to the restarted gateway.
        again = requests.post(
            f"{url}/api/v1/payments/{payment_id}/authorize", json=auth, timeout=60
        )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "succeeded"
    assert len(world.bank.debits(payment_id)) == 1
    assert world.bank.balance(payer.bank_token) == 100_000 - bill["amount_fen"]
    assert world.ledger(payment_id)["problems"] == []


def test_a_running_dispatcher_resolves_a_payment_whose_bank_answer_was_lost(
    world: MandateWorld,
) -> None:
    payer = world.payer(card_balance=100_000)
    bill = payer.bills[0]
    payment_id, auth = world.sign(payer, bill)
    world.bank.faults(timeout_after_debit=True)
    assert world.gw.authorize(payment_id, auth).status_code == 202
    world.bank.clear_faults()
    config = world.gw.ctx.config
    dispatcher = subprocess.Popen(
        [
            *CLI,
            "--state-dir",
            str(config.state_dir),
            "--database-url",
            config.effective_database_url,
            "dispatch",
            "--resolve-every",
            "0.2",
            "--resolve-older-than",
            "0",
        ],
        env={**os.environ, "TVPAY_GATEWAY_BANK_URL": world.bank.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: world.payment(payer, payment_id)["status"] == "succeeded",
            60,
            "the dispatcher to finish the processing payment",
        )
    finally:
        dispatcher.terminate()
        _out, err = dispatcher.communicate(timeout=30)
    assert dispatcher.returncode == 0, err
    assert "Traceback" not in err
    assert len(world.bank.debits(payment_id)) == 1
    assert world.ledger(payment_id)["problems"] == []
