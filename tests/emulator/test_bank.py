"""The bank simulator alone, as its own process over real HTTP: debits once per idempotency key,
reversals, the settlement file, seed files and the fault controls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
import requests

from tests.fixtures.bank import BankProcess, bank_process


@pytest.fixture
def bank(tmp_path: Path):
    with bank_process(tmp_path) as running:
        running.account("card-1", 10_000)
        yield running


def _debit(bank: BankProcess, key: str, amount: int = 2_500, **kwargs) -> requests.Response:
    body = {"idempotency_key": key, "bank_token": "card-1", "amount_fen": amount, "currency": "CNY"}
    return bank.call("POST", "/debits", json=body, **kwargs)


def test_a_repeated_debit_gets_the_first_answer_and_takes_nothing_more(bank: BankProcess) -> None:
    first = _debit(bank, "pay-1")
    assert first.status_code == 200 and first.json()["status"] == "ok"
    again = _debit(bank, "pay-1")
    assert again.status_code == 200
    assert again.json()["debit_id"] == first.json()["debit_id"]
    assert bank.balance("card-1") == 7_500
    assert bank.call("GET", "/debits/pay-1").json()["debit_id"] == first.json()["debit_id"]


def test_concurrent_debits_with_one_key_debit_once(bank: BankProcess) -> None:
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _debit(bank, "pay-race"), range(16)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["debit_id"] for a in answers}) == 1
    assert bank.balance("card-1") == 7_500


def test_insufficient_funds_takes_nothing_and_stays_the_answer_for_the_key(
    bank: BankProcess,
) -> None:
    refused = _debit(bank, "pay-big", 10_001)
    assert refused.status_code == 402 and refused.json()["status"] == "insufficient"
    assert bank.balance("card-1") == 10_000
    bank.account("card-1", 50_000)
    assert _debit(bank, "pay-big", 10_001).status_code == 402  # the first answer, still
    assert bank.balance("card-1") == 50_000


def test_a_key_reused_for_another_debit_is_refused(bank: BankProcess) -> None:
    assert _debit(bank, "pay-2").status_code == 200
    reused = _debit(bank, "pay-2", 2_600)
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert bank.balance("card-1") == 7_500


@pytest.mark.parametrize(
    "body",
    [
        {"idempotency_key": "k", "bank_token": "card-1", "amount_fen": -5, "currency": "CNY"},
        {"idempotency_key": "k", "bank_token": "card-1", "amount_fen": 0, "currency": "CNY"},
        {"idempotency_key": "k", "bank_token": "card-1", "amount_fen": "5", "currency": "CNY"},
        {"idempotency_key": "k", "bank_token": "card-1", "amount_fen": 1.5, "currency": "CNY"},
        {"idempotency_key": "k", "bank_token": "card-1", "amount_fen": True, "currency": "CNY"},
        {"idempotency_key": "a/b", "bank_token": "card-1", "amount_fen": 5, "currency": "CNY"},
        {"idempotency_key": "k", "bank_token": "card-1", "amount_fen": 5, "currency": "cny"},
        {"idempotency_key": "k", "bank_token": "card-1", "amount_fen": 5},
        {
            "idempotency_key": "k",
            "bank_token": "card-1",
            "amount_fen": 5,
            "currency": "CNY",
            "x": 1,
        },
        [],
    ],
)
def test_malformed_debits_are_refused_and_take_nothing(bank: BankProcess, body) -> None:
    answer = bank.call("POST", "/debits", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"
    assert bank.state()["debits"] == [] and bank.balance("card-1") == 10_000


def test_unknown_card_and_wrong_currency_are_refused(bank: BankProcess) -> None:
    body = {"idempotency_key": "k1", "bank_token": "nobody", "amount_fen": 5, "currency": "CNY"}
    assert bank.call("POST", "/debits", json=body).json()["error"]["code"] == "unknown_account"
    body = {"idempotency_key": "k2", "bank_token": "card-1", "amount_fen": 5, "currency": "HKD"}
    assert bank.call("POST", "/debits", json=body).json()["error"]["code"] == "currency_mismatch"
    assert bank.call("GET", "/debits/k1").status_code == 404


def test_a_reversal_gives_the_debit_back_once(bank: BankProcess) -> None:
    assert _debit(bank, "pay-3").status_code == 200
    first = bank.call("POST", "/debits/pay-3/reversal")
    assert first.status_code == 200 and first.json()["reversed_at"]
    again = bank.call("POST", "/debits/pay-3/reversal")
    assert again.json()["reversed_at"] == first.json()["reversed_at"]
    assert bank.balance("card-1") == 10_000
    assert bank.call("POST", "/debits/none/reversal").json()["error"]["code"] == "debit_not_found"
    assert _debit(bank, "pay-4", 99_999).status_code == 402
    nothing = bank.call("POST", "/debits/pay-4/reversal")
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "nothing_to_reverse"


def test_the_settlement_file_lists_the_days_debits_and_reversals(bank: BankProcess) -> None:
    taken = _debit(bank, "pay-5").json()
    _debit(bank, "pay-6", 99_999)  # refused: moves no money, so not in the file
    bank.call("POST", "/debits/pay-5/reversal")
    day = taken["created_at"][:10]
    csv = bank.call("GET", f"/settlements/{day}.csv")
    assert csv.status_code == 200
    lines = csv.text.splitlines()
    assert lines[0] == "debit_id,idempotency_key,kind,amount_fen,currency,at"
    assert [line.split(",")[1:5] for line in lines[1:]] == [
        ["pay-5", "debit", "2500", "CNY"],
        ["pay-5", "reversal", "2500", "CNY"],
    ]
    assert bank.call("GET", "/settlements/2025-02-30.csv").status_code == 422
    empty = bank.call("GET", f"/settlements/{date(2001, 1, 1).isoformat()}.csv")
    assert empty.text.splitlines() == lines[:1]


def test_down_answers_503_until_cleared(bank: BankProcess) -> None:
    bank.faults(down=True)
    down = _debit(bank, "pay-7")
    assert down.status_code == 503 and down.json()["error"]["code"] == "bank_down"
    assert bank.call("GET", "/debits/pay-7").status_code == 503
    bank.clear_faults()
    assert _debit(bank, "pay-7").status_code == 200
    assert bank.balance("card-1") == 7_500


def test_slow_delays_every_answer(bank: BankProcess) -> None:
    bank.faults(slow=0.3)
    started = time.monotonic()
    assert _debit(bank, "pay-8").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_after_debit_takes_the_money_but_answers_too_late(bank: BankProcess) -> None:
    bank.faults(timeout_after_debit=True)
    with pytest.raises(requests.Timeout):
        _debit(bank, "pay-9", timeout=0.5)
    # The answer was lost, the money was not: the debit is committed before the answer is held.
    assert bank.call("GET", "/debits/pay-9").json()["status"] == "ok"
    bank.clear_faults()
    assert _debit(bank, "pay-9").json()["status"] == "ok"
    assert len(bank.debits("pay-9")) == 1 and bank.balance("card-1") == 7_500


def test_the_books_survive_a_restart(tmp_path: Path) -> None:
    with bank_process(tmp_path) as first:
        first.account("card-1", 10_000)
        debit_id = _debit(first, "pay-10").json()["debit_id"]
    with bank_process(tmp_path) as second:
        assert _debit(second, "pay-10").json()["debit_id"] == debit_id
        assert second.balance("card-1") == 7_500


def test_a_seed_file_creates_card_accounts(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    accounts = [{"bank_token": "card-a", "balance_fen": 500, "currency": "CNY"}]
    seed.write_text(json.dumps({"accounts": accounts}))
    with bank_process(tmp_path, "--seed", str(seed)) as bank:
        assert bank.state()["accounts"] == accounts


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"accounts": [{"bank_token": "a", "balance_fen": -1, "currency": "CNY"}]}',
        '{"accounts": [{"bank_token": "ok", "balance_fen": 1}, {"bank_token": "bad/"}]}',
    ],
)
def test_a_bad_seed_file_is_refused_with_a_message_and_loads_nothing(
    tmp_path: Path, content: str
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(content)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator.bank",
            "serve",
            "--state-dir",
            str(tmp_path),
            "--seed",
            str(seed),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("bank: the seed file") and "Traceback" not in run.stderr
    with bank_process(tmp_path) as bank:
        assert bank.state()["accounts"] == []
