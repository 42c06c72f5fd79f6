"""Staff move wallet money through the real HTTP API and the tvpay-gateway command: credits
idempotent on their reference and audited, refunds never twice and never more than was paid,
and `ledger check` / `ledger balance` on a real database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gateway.db.models import Payment
from gateway.ledger import accounts, balance, check
from tests.gateway.helpers import GatewayUnderTest

CLI = [sys.executable, "-m", "gateway.cli"]


def _credit(gw: GatewayUnderTest, household_no: str, **changes: Any) -> Any:
    body = {"amount_fen": 2500, "currency": "CNY", "reference": "SHOP-77", "channel": "shop"}
    return gw.staff("POST", f"/households/{household_no}/wallet/credits", json={**body, **changes})


def _audit(gw: GatewayUnderTest, action: str) -> list[dict[str, Any]]:
    entries = gw.staff("GET", "/audit").json()["entries"]
    return [e for e in entries if e["action"] == action]


def _paid(gw: GatewayUnderTest) -> tuple[str, str, dict[str, Any]]:
    """A household that paid its first bill from its wallet: (household_no, token, payment)."""
    household_no = gw.household()
    gw.bills(household_no, months=2)
    dongle = gw.provision(household_no)
    token = gw.session_token(dongle)
    bill = gw.call("GET", "/api/v1/bills", token).json()["bills"][0]
    created = gw.create_payment(token, bill).json()
    assert gw.authorize(created["payment_id"], dongle.sign_payment(created["sign_fields"])).ok
    return household_no, token, created


def test_a_credit_sent_twice_credits_once_and_is_audited_once(gw: GatewayUnderTest) -> None:
    household_no = gw.household()
    first, again = _credit(gw, household_no), _credit(gw, household_no)
    assert first.status_code == again.status_code == 200
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)
    assert first.json()["balance_fen"] == again.json()["balance_fen"] == 2500
    (entry,) = _audit(gw, "wallet_credit")
    assert entry["actor"] == "tester" and entry["target"] == household_no
    assert entry["details"]["reference"] == "SHOP-77" and entry["details"]["amount_fen"] == 2500


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"amount_fen": 2600}, 409, "reference_reused"),
        ({"amount_fen": 5_000_001}, 422, "amount_invalid"),
        ({"amount_fen": 0}, 422, "invalid_request"),
        ({"currency": "USD"}, 422, "currency_invalid"),
        ({"reference": "has space"}, 422, "invalid_request"),
        ({"channel": "cash"}, 422, "invalid_request"),
    ],
)
def test_bad_credits_are_refused_and_change_nothing(
    gw: GatewayUnderTest, changes: dict[str, Any], status: int, code: str
) -> None:
    household_no = gw.household()
    assert _credit(gw, household_no).status_code == 200
    refused = _credit(gw, household_no, **changes)
    assert refused.status_code == status and refused.json()["error"]["code"] == code
    wallet = accounts.wallet(household_no)
    assert gw.ctx.db.read(lambda s: balance(s, wallet)) == 2500


def test_credits_need_a_staff_token_and_a_known_household(gw: GatewayUnderTest) -> None:
    body = {"amount_fen": 1, "currency": "CNY", "reference": "R", "channel": "shop"}
    anonymous = gw.call(
        "POST", f"/api/v1/staff/households/{gw.household()}/wallet/credits", json=body
    )
    assert anonymous.status_code == 401
    unknown = _credit(gw, "0000000000")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "household_not_found"


def test_a_refund_returns_the_payment_to_the_wallet_once(gw: GatewayUnderTest) -> None:
    household_no, token, created = _paid(gw)
    wallet = accounts.wallet(household_no)
    before = gw.ctx.db.read(lambda s: balance(s, wallet))
    path = f"/payments/{created['payment_id']}/refund"
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda _: gw.staff("POST", path, json={"reason": "paid at the counter"}), range(6)
            )
        )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 5
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
        "payment_refunded"
    }
    amount = created["bill"]["amount_fen"]
    assert gw.ctx.db.read(lambda s: balance(s, wallet)) == before + amount
    payment = gw.call("GET", f"/api/v1/payments/{created['payment_id']}", token).json()
    assert payment["status"] == "refunded"
    stored = gw.ctx.db.read(lambda s: s.get(Payment, created["payment_id"]))
    assert stored.refund_reason == "paid at the counter" and stored.refunded_at is not None
    (entry,) = _audit(gw, "payment_refund")
    assert entry["details"]["reason"] == "paid at the counter"
    assert entry["details"]["amount_fen"] == amount
    assert gw.ctx.db.read(check) == []


def test_only_a_payment_that_took_money_can_be_refunded(gw: GatewayUnderTest) -> None:
    household_no = gw.household()
    gw.bills(household_no, months=1)
    token = gw.session_token(gw.provision(household_no))
    bill = gw.call("GET", "/api/v1/bills", token).json()["bills"][0]
    pending = gw.create_payment(token, bill).json()["payment_id"]
    refused = gw.staff("POST", f"/payments/{pending}/refund", json={"reason": "mistake"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "payment_not_refundable"
    unknown = gw.staff("POST", f"/payments/pay_{'0' * 32}/refund", json={"reason": "x"})
    assert unknown.status_code == 404
    blank = gw.staff("POST", f"/payments/{pending}/refund", json={"reason": ""})
    assert blank.status_code == 422


def _cli(gw: GatewayUnderTest, *args: str) -> subprocess.CompletedProcess[str]:
    url = gw.ctx.config.database_url
    state = str(gw.ctx.config.state_dir)
    return subprocess.run(
        [*CLI, "--state-dir", state, "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cli_credits_refunds_and_checks_the_ledger(gw: GatewayUnderTest) -> None:
    household_no, _token, created = _paid(gw)
    credit = ["wallet", "credit", "--household", household_no, "--amount-fen", "1200"]
    done = _cli(gw, *credit, "--reference", "BANK-9", "--channel", "bank_transfer")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("credited ¥12.00 to household")
    again = _cli(gw, *credit, "--reference", "BANK-9", "--channel", "bank_transfer")
    assert again.stdout.startswith("already credited ¥12.00")
    refund = _cli(gw, "refund", created["payment_id"], "--reason", "bill withdrawn")
    assert refund.returncode == 0 and "refunded: ¥100.01 back to its wallet" in refund.stdout
    twice = _cli(gw, "refund", created["payment_id"], "--reason", "bill withdrawn")
    assert twice.returncode == 2 and "already refunded" in twice.stderr
    wallet = _cli(gw, "ledger", "balance", accounts.wallet(household_no))
    assert wallet.stdout.strip() == f"wallet:{household_no}: 21203 fen (¥212.03)"
    sound = _cli(gw, "ledger", "check")
    assert (sound.returncode, sound.stdout.strip()) == (0, "ledger sound: 4 transfers")
    path = gw.ctx.config.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:  # an edit made around the gateway, by hand
        db.execute("UPDATE ledger_transfers SET amount_fen = 1 WHERE kind = 'refund'")
    broken = _cli(gw, "ledger", "check")
    assert broken.returncode == 1
    assert "was changed after it was posted" in broken.stdout
    assert "ledger NOT sound" in broken.stdout


def test_ledger_balance_refuses_something_that_is_no_account(gw: GatewayUnderTest) -> None:
    result = _cli(gw, "ledger", "balance", "nonsense")
    assert result.returncode == 2 and "is not an account code" in result.stderr
    unused = _cli(gw, "ledger", "balance", "wallet:0000000000")
    assert (unused.returncode, unused.stdout.strip()) == (0, "wallet:0000000000: no transfers yet")
