"""Staff bind, list and revoke mandates (API and CLI, audited), bad terms are refused, and a
refunded mandate payment goes back to the card through the outbox's ``bank.reversal``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.bank_debits import reversal_handler
from gateway.bankclient import BankClient
from gateway.clock import now
from gateway.outbox import claim, mark_delivered
from tests.gateway.mandate_world import CARD, MandateWorld


class DeliveryFailed(Exception):
    """What the dispatcher's handlers raise to have a message tried again later."""


def _audit_actions(world: MandateWorld) -> list[str]:
    entries = world.gw.staff("GET", "/audit").json()["entries"]
    return [e["action"] for e in entries]


def test_staff_bind_list_and_revoke_a_mandate_audited(world: MandateWorld) -> None:
    payer = world.payer()
    listed = world.gw.staff("GET", f"/households/{payer.household_no}/mandates").json()
    assert [m["mandate_id"] for m in listed["mandates"]] == [payer.mandate["mandate_id"]]
    assert listed["mandates"][0]["card_masked"] == CARD
    assert "bank_token" not in listed["mandates"][0]
    sources = world.gw.call("GET", "/api/v1/funding-sources", payer.token).json()
    kinds = {s["kind"]: s for s in sources["funding_sources"]}
    assert kinds["mandate"]["is_default"] and kinds["mandate"]["mandate"]["card_masked"] == CARD
    revoked = world.gw.staff(
        "POST", f"/mandates/{payer.mandate['mandate_id']}/revoke", json={"reason": "card lost"}
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    sources = world.gw.call("GET", "/api/v1/funding-sources", payer.token).json()
    assert {s["kind"]: s["is_default"] for s in sources["funding_sources"]} == {
        "wallet": True,
        "mandate": False,
    }
    chosen = world.gw.call(
        "POST",
        "/api/v1/payments",
        payer.token,
        headers={"Idempotency-Key": "after-revoke"},
        json={
            "bill_id": payer.bills[0]["bill_id"],
            "amount_fen": payer.bills[0]["amount_fen"],
            "currency": "CNY",
            "funding_source": payer.mandate["funding_source_id"],
        },
    )
    assert chosen.status_code == 409 and chosen.json()["error"]["code"] == "mandate_revoked"
    assert {"mandate_bind", "mandate_revoke"} <= set(_audit_actions(world))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"card_masked": "6222021234561234"}, "invalid_request"),  # the full number
        ({"card_masked": "622202******123"}, "invalid_request"),
        ({"bank_token": "card 1"}, "invalid_request"),
        ({"per_payment_limit_fen": 0}, "invalid_request"),
        ({"per_payment_limit_fen": "100"}, "invalid_request"),
        ({"monthly_limit_fen": 10**12}, "invalid_request"),
        ({"per_payment_limit_fen": 2_000, "monthly_limit_fen": 1_000}, "limit_invalid"),
        ({"currency": "USD"}, "invalid_request"),
    ],
)
def test_bad_mandate_terms_are_refused_and_nothing_is_bound(
    world: MandateWorld, change: dict, code: str
) -> None:
    household_no = world.gw.household()
    body = {
        "bank_token": "card-x",
        "card_masked": CARD,
        "per_payment_limit_fen": 1_000,
        "monthly_limit_fen": 5_000,
        **change,
    }
    answer = world.gw.staff("POST", f"/households/{household_no}/mandates", json=body)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == code
    listed = world.gw.staff("GET", f"/households/{household_no}/mandates").json()
    assert listed["mandates"] == []
    unknown = world.gw.staff("POST", "/households/NOPE-1/mandates", json={**body, **change})
    assert unknown.status_code in (404, 422)


def test_the_cli_binds_lists_and_revokes(world: MandateWorld) -> None:
    household_no = world.gw.household()
    config = world.gw.ctx.config
    base = [sys.executable, "-m", "gateway.cli", "--state-dir", str(config.state_dir)]
    base += ["--database-url", config.effective_database_url, "mandate"]
    env_bank = {"TVPAY_GATEWAY_BANK_URL": world.bank.url, "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, env=env_bank, timeout=120
        )

    bound = run(
        "bind",
        "--household",
        household_no,
        "--bank-token",
        "card-cli",
        "--card-masked",
        CARD,
        "--per-payment-limit-fen",
        "5000",
        "--monthly-limit-fen",
        "20000",
    )
    assert bound.returncode == 0, bound.stderr
    mandate_id = bound.stdout.split("\t")[0]
    assert "per payment ¥50.00" in bound.stdout
    assert run("list", "--household", household_no).stdout.startswith(f"{mandate_id}\tactive")
    assert run("revoke", mandate_id, "--reason", "closed").returncode == 0
    assert "\trevoked\t" in run("list", "--household", household_no).stdout
    bad = run(
        "bind",
        "--household",
        household_no,
        "--bank-token",
        "card-cli",
        "--card-masked",
        "6222021234561234",
        "--per-payment-limit-fen",
        "5000",
        "--monthly-limit-fen",
        "20000",
    )
    assert bad.returncode == 2 and "masked" in bad.stderr and "Traceback" not in bad.stderr


def test_a_refunded_mandate_payment_is_reversed_at_the_bank_once(world: MandateWorld) -> None:
    payer = world.payer(card_balance=100_000)
    payment_id, auth = world.sign(payer, payer.bills[0])
    assert world.gw.authorize(payment_id, auth).status_code == 200
    refunded = world.gw.staff("POST", f"/payments/{payment_id}/refund", json={"reason": "double"})
    assert refunded.status_code == 200, refunded.text
    assert "bank.reversal" in world.ledger(payment_id)["outbox"]
    handle = reversal_handler(BankClient(world.bank.url, 5), DeliveryFailed)
    db = world.gw.ctx.db
    world.bank.faults(down=True)
    (message,) = db.write(lambda s: claim(s, "w1", ["bank.reversal"], now(), 60, 10))
    with pytest.raises(DeliveryFailed):
        handle(message)  # the dispatcher tries again later
    world.bank.clear_faults()
    for _ in range(2):  # delivered twice (a dispatcher died after the call): reversed once
        record = handle(message)
    db.write(lambda s: (record(s, now()), mark_delivered(s, message.id, "w1", now())))
    assert world.bank.balance(payer.bank_token) == 100_000
    ledger = world.ledger(payment_id)
    assert (ledger["clearing"], ledger["payable"], ledger["problems"]) == (0, 0, [])
