"""The utility simulator's prepaid (远程费控) accounts, as its own process: a balance used day by
day on the simulated clock, credited once per purchase, read through ``GET /meters/{account_no}``;
closed accounts; and ``ack_twice``, a utility whose idempotency is broken."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.pki import new_key
from tests.emulator.utility import UtilityUnderTest, public_pem, utility_process
from tests.gateway.helpers import wait_until

DAY = 86400
PRICE = 56030  # 0.5603 yuan/kWh in milli-fen per kWh: 10 kWh cost 560.3 fen, charged 561
TODAY = "2026-05-28"  # START's day (UTC)


@pytest.fixture(scope="module")
def gateway_key() -> ec.EllipticCurvePrivateKey:
    return new_key()


@pytest.fixture
def utility(tmp_path: Path, gateway_key: ec.EllipticCurvePrivateKey) -> Iterator[UtilityUnderTest]:
    with utility_process(tmp_path, public_pem(gateway_key)) as running:
        yield running


def prepaid(account_no: str, **changes: Any) -> dict[str, Any]:
    return {
        "account_no": account_no,
        "balance_fen": 10000,
        "currency": "CNY",
        "daily_use_wh": 10000,
        "price_milli_fen_per_kwh": PRICE,
        "since": "2026-05-20",
        **changes,
    }


def purchase(
    n: int, account_no: str, amount_fen: int = 5000, kind: str = "remote"
) -> dict[str, Any]:
    return {
        "payment_id": f"pay_{n:032x}",
        "biller": "SGCC-BJ",
        "account_no": account_no,
        "bill_ref": f"PUR-{n:08d}",
        "amount_fen": amount_fen,
        "currency": "CNY",
        "paid_at": "2026-05-28T20:00:00Z",
        "kind": "purchase",
        "purchase": {"meter_no": "000011112222", "meter_kind": kind, "energy_wh": 8923},
    }


def meter(utility: UtilityUnderTest, account_no: str) -> requests.Response:
    return requests.get(f"{utility.url}/meters/{account_no}", timeout=10)


def seed(utility: UtilityUnderTest, body: dict[str, Any]) -> requests.Response:
    return requests.post(utility.url + "/control/seed", json=body, timeout=10)


def statement(utility: UtilityUnderTest, day: str) -> list[dict[str, str]]:
    text = requests.get(f"{utility.url}/statements/{day}.csv", timeout=10).text
    return list(csv.DictReader(io.StringIO(text)))


def test_a_prepaid_balance_is_used_each_day_and_credited_once_per_purchase(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    assert seed(utility, {"prepaid": [prepaid("PA01")]}).json()["prepaid"] == 1
    read = meter(utility, "PA01").json()
    # 8 settled days (20th to 27th) of 10 kWh at 561 fen; the 28th is not over yet.
    assert read["balance_fen"] == 10000 - 8 * 561
    assert (read["account_no"], read["currency"], read["as_of"]) == (
        "PA01",
        "CNY",
        "2026-05-28T20:26:40Z",
    )
    assert read["usage"] == [
        {"day": f"2026-05-{d}", "used_wh": 10000, "spent_fen": 561} for d in range(20, 28)
    ]

    answer = utility.post_signed(gateway_key, purchase(1, "PA01")).json()
    assert answer["status"] == "credited" and answer["utility_ref"].startswith("UT20260528")
    assert utility.post_signed(gateway_key, purchase(1, "PA01")).json() == answer
    assert meter(utility, "PA01").json()["balance_fen"] == 10512
    assert utility.state()["prepaid"] == {"PA01": {"balance_fen": 10512, "currency": "CNY"}}
    assert [r["bill_ref"] for r in statement(utility, TODAY)] == ["PUR-00000001"]

    utility.advance(DAY)  # the 28th is settled with the purchase counted
    read = meter(utility, "PA01").json()
    assert read["balance_fen"] == 10512 - 561
    assert read["usage"][-1] == {"day": TODAY, "used_wh": 10000, "spent_fen": 561}
    assert len(read["usage"]) == 9


def test_the_history_is_the_last_30_settled_days(utility: UtilityUnderTest) -> None:
    seed(utility, {"prepaid": [prepaid("PA08", balance_fen=50000, since="2026-04-01")]})
    usage = meter(utility, "PA08").json()["usage"]
    assert [u["day"] for u in (usage[0], usage[-1])] == ["2026-04-28", "2026-05-27"]
    assert len(usage) == 30
    seed(utility, {"prepaid": [prepaid("PA09", since=TODAY)]})
    assert meter(utility, "PA09").json()["usage"] == []  # nothing settled yet


def test_the_supply_is_cut_at_the_overdraft_limit_and_restored_by_a_purchase(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    account = prepaid("PA02", balance_fen=1000, overdraft_limit_fen=500, since="2026-05-25")
    seed(utility, {"prepaid": [account]}).raise_for_status()
    read = meter(utility, "PA02").json()
    # 1000 → 439 → -122; then the 378 fen of room down to -500 buy 6746 Wh (377.98 fen).
    assert read["balance_fen"] == -500
    assert [(u["used_wh"], u["spent_fen"]) for u in read["usage"][-3:]] == [
        (10000, 561),
        (10000, 561),
        (6746, 378),
    ]
    utility.advance(DAY)
    cut = meter(utility, "PA02").json()
    assert cut["usage"][-1] == {"day": TODAY, "used_wh": 0, "spent_fen": 0}
    assert cut["balance_fen"] == -500
    assert utility.post_signed(gateway_key, purchase(2, "PA02", 2000)).json()["status"] == (
        "credited"
    )
    utility.advance(DAY)
    read = meter(utility, "PA02").json()
    assert read["usage"][-1] == {"day": "2026-05-29", "used_wh": 10000, "spent_fen": 561}
    assert read["balance_fen"] == -500 + 2000 - 561


def test_purchases_for_unknown_postpaid_or_closed_accounts_are_rejected(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    seed(
        utility,
        {
            "accounts": [{"account_no": "POST01", "status": "open"}],
            "prepaid": [prepaid("PA03")],
        },
    ).raise_for_status()
    reasons = [
        utility.post_signed(gateway_key, purchase(n, account)).json().get("reason")
        for n, account in ((1, "NOBODY"), (2, "POST01"))
    ]
    assert reasons == ["account_unknown", "not_prepaid"]
    assert meter(utility, "NOBODY").json()["error"]["code"] == "account_unknown"
    assert meter(utility, "POST01").status_code == 404
    assert meter(utility, "POST01").json()["error"]["code"] == "not_prepaid"

    closed = requests.post(f"{utility.url}/control/accounts/PA03/close", timeout=10)
    assert closed.json() == {"account_no": "PA03", "status": "closed"}
    rejected = utility.post_signed(gateway_key, purchase(3, "PA03")).json()
    assert rejected == {
        "payment_id": purchase(3, "PA03")["payment_id"],
        "status": "rejected",
        "reason": "account_closed",
    }
    gone = meter(utility, "PA03")
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "account_closed")
    assert utility.state()["prepaid"]["PA03"]["balance_fen"] == 10000 - 8 * 561

    # A card or token meter keeps its own balance: the utility records the sale, nothing more.
    sale = utility.post_signed(gateway_key, purchase(4, "NOBODY", kind="token")).json()
    assert sale["status"] == "credited"
    assert "NOBODY" not in utility.state()["prepaid"]


def test_a_closed_account_rejects_its_bills_and_the_cli_closes_one(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emulator.utility", "close", "--url", utility.url, "1000000001"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    asked = subprocess.run(
        [sys.executable, "-m", "emulator.utility", "meter", "--url", utility.url, "1000000001"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert asked.returncode == 1 and '"not_prepaid"' in asked.stdout, asked.stdout
    bill = {
        "payment_id": "pay_" + "1" * 32,
        "biller": "SGCC-BJ",
        "account_no": "1000000001",
        "bill_ref": "E-202505",
        "amount_fen": 12345,
        "currency": "CNY",
        "paid_at": "2026-05-28T20:00:00Z",
    }
    assert utility.post_signed(gateway_key, bill).json()["reason"] == "account_closed"
    assert utility.post_signed(gateway_key, {**bill, "kind": "bill"}).json()["status"] == (
        "rejected"
    )


def test_ack_twice_writes_a_repeat_off_again_under_a_new_reference(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    seed(utility, {"prepaid": [prepaid("PA04")]}).raise_for_status()
    first = utility.post_signed(gateway_key, purchase(1, "PA04")).json()
    utility.control("POST", "/control/faults", {"ack_twice": True})
    utility.advance(60)
    again = utility.post_signed(gateway_key, purchase(1, "PA04")).json()
    assert again["status"] == "credited"
    assert again["utility_ref"] != first["utility_ref"]
    asked = requests.get(f"{utility.url}/writeoffs/{first['payment_id']}", timeout=10).json()
    assert asked == first  # its own record of the payment is still the first
    lines = statement(utility, TODAY)
    assert [(r["payment_id"], r["utility_ref"]) for r in lines] == [
        (first["payment_id"], first["utility_ref"]),
        (first["payment_id"], again["utility_ref"]),
    ]
    state = utility.state()
    assert state["duplicates"] == 1
    assert state["writeoffs"] == {"credited": 1, "rejected": 0, "notifications": 2}
    assert state["prepaid"]["PA04"]["balance_fen"] == 10000 - 8 * 561 + 2 * 5000
    # A new payment is written off once, even with the fault on.
    other = utility.post_signed(gateway_key, purchase(2, "PA04")).json()
    assert other["status"] == "credited"
    assert utility.state()["duplicates"] == 1


def test_the_meter_query_obeys_the_down_and_slow_faults(utility: UtilityUnderTest) -> None:
    seed(utility, {"prepaid": [prepaid("PA05")]}).raise_for_status()
    utility.control("POST", "/control/faults", {"down": True})
    down = meter(utility, "PA05")
    assert (down.status_code, down.json()["error"]["code"]) == (503, "utility_down")
    utility.control("DELETE", "/control/faults")
    utility.control("POST", "/control/faults", {"slow": 600})
    answers: list[requests.Response] = []
    asking = threading.Thread(target=lambda: answers.append(meter(utility, "PA05")))
    asking.start()
    wait_until(lambda: utility.state()["held"] == 1, 30, "the query was never held")
    assert answers == []
    utility.control("DELETE", "/control/faults")
    asking.join(30)
    assert answers[0].json()["balance_fen"] == 10000 - 8 * 561


def test_a_purchase_signed_by_another_key_credits_nothing(utility: UtilityUnderTest) -> None:
    seed(utility, {"prepaid": [prepaid("PA11")]}).raise_for_status()
    forged = utility.post_signed(new_key(), purchase(1, "PA11", 90000))
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "signature_invalid")
    assert utility.state()["prepaid"]["PA11"]["balance_fen"] == 10000 - 8 * 561


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"kind": "purchase", "purchase": None}, "body"),
        ({"kind": "bill"}, "body"),
        ({"purchase": {"meter_no": "1", "meter_kind": "gas", "energy_wh": 1}}, "meter_kind"),
        ({"purchase": {"meter_no": "1", "meter_kind": "remote", "energy_wh": "1"}}, "energy_wh"),
        ({"kind": "refund"}, "kind"),
    ],
)
def test_malformed_purchase_notifications_get_422_and_credit_nothing(
    utility: UtilityUnderTest,
    gateway_key: ec.EllipticCurvePrivateKey,
    change: dict[str, Any],
    where: str,
) -> None:
    seed(utility, {"prepaid": [prepaid("PA06")]}).raise_for_status()
    body = {**purchase(1, "PA06"), **change}
    if body.get("purchase") is None:
        body.pop("purchase")
    answer = utility.post_signed(gateway_key, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"
    assert where in answer.json()["error"]["message"]
    assert utility.state()["prepaid"]["PA06"]["balance_fen"] == 10000 - 8 * 561
    assert utility.state()["writeoffs"]["notifications"] == 0


@pytest.mark.parametrize(
    ("account", "code", "words"),
    [
        (prepaid("PA07", since="2010-01-01"), "seed_invalid", "since 2010-01-01 must be"),
        (prepaid("PA07", since="2026-06-01"), "seed_invalid", "and today (2026-05-28"),
        (prepaid("PA07", balance_fen=-10), "invalid_request", "below the overdraft limit"),
        (prepaid("PA07", price_milli_fen_per_kwh=0), "invalid_request", "price_milli_fen"),
        (prepaid("PA/7"), "invalid_request", "account_no"),
    ],
)
def test_a_bad_prepaid_seed_is_refused_whole(
    utility: UtilityUnderTest, account: dict[str, Any], code: str, words: str
) -> None:
    answer = seed(
        utility, {"accounts": [{"account_no": "ACC1", "status": "closed"}], "prepaid": [account]}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code
    assert words in answer.json()["error"]["message"]
    assert utility.state()["prepaid"] == {}
    assert meter(utility, "ACC1").json()["error"]["code"] == "account_unknown"  # not applied


def test_a_meter_path_that_is_not_an_account_number_is_a_typed_error(
    utility: UtilityUnderTest,
) -> None:
    answer = meter(utility, "x" * 33)
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"


def test_serve_refuses_a_seed_file_it_cannot_apply(tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    clock.write_text("1780000000")
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps({"prepaid": [prepaid("PA10", since="2026-06-01")]}))
    pem = tmp_path / "gateway.pem"
    pem.write_bytes(public_pem(new_key()))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator.utility",
            "serve",
            "--state-dir",
            str(tmp_path / "state"),
            "--gateway-key",
            str(pem),
            "--clock-file",
            str(clock),
            "--seed",
            str(seed_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"utility: seed file {seed_file} is unusable: prepaid PA10: ")
    assert "Traceback" not in result.stderr
