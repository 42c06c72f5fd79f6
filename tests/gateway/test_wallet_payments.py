"""Paying from the household's wallet through the real HTTP API, on both databases: refused
before the PIN when the wallet is short, refused at authorize (nothing recorded, counter not
spent) when it fell since, and two payments racing for the last yuan: exactly one succeeds."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import Dongle, FundingSource, Household, Mandate
from gateway.ledger import accounts, balance, check
from tests.gateway.helpers import GatewayUnderTest, TestDongle


def _unfunded_household(gw: GatewayUnderTest, dongles: int = 1) -> tuple[str, list[TestDongle]]:
    household_no = gw.household()
    gw.bills(household_no, months=3, fund=False)  # bills of 100.01, 100.02, 100.03 yuan
    return household_no, [gw.provision(household_no) for _ in range(dongles)]


def _credit(gw: GatewayUnderTest, household_no: str, amount_fen: int, reference: str) -> None:
    body = {"amount_fen": amount_fen, "currency": "CNY", "reference": reference, "channel": "shop"}
    answer = gw.staff("POST", f"/households/{household_no}/wallet/credits", json=body)
    assert answer.status_code == 200, answer.text


def _bills(gw: GatewayUnderTest, token: str) -> list[dict[str, Any]]:
    return gw.call("GET", "/api/v1/bills", token).json()["bills"]


def _wallet(gw: GatewayUnderTest, household_no: str) -> int:
    return gw.ctx.db.read(lambda s: balance(s, accounts.wallet(household_no)))


def test_a_bill_the_wallet_cannot_cover_is_refused_before_the_pin(gw: GatewayUnderTest) -> None:
    household_no, (dongle,) = _unfunded_household(gw)
    _credit(gw, household_no, 1200, "SHOP-1")
    token = gw.session_token(dongle)
    answer = gw.create_payment(token, _bills(gw, token)[0])
    assert answer.status_code == 409
    assert answer.json()["error"] == {
        "code": "insufficient_funds",
        "message": "The wallet holds ¥12.00, this bill needs ¥100.01: top up at a shop or "
        "choose another way to pay.",
        "details": {"balance_fen": 1200, "needed_fen": 10001, "currency": "CNY"},
    }
    assert gw.call("GET", "/api/v1/payments", token).json()["payments"] == []


def test_authorize_refuses_when_the_wallet_fell_and_spends_nothing(gw: GatewayUnderTest) -> None:
    household_no, (dongle,) = _unfunded_household(gw)
    _credit(gw, household_no, 10002, "SHOP-1")  # either of the first two bills, not both
    token = gw.session_token(dongle)
    first, second = (gw.create_payment(token, b).json() for b in _bills(gw, token)[:2])
    assert gw.authorize(first["payment_id"], dongle.sign_payment(first["sign_fields"])).ok
    late = dongle.sign_payment(second["sign_fields"])
    refused = gw.authorize(second["payment_id"], late)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "insufficient_funds"
    assert "holds ¥0.01, this bill needs ¥100.02" in refused.json()["error"]["message"]
    assert refused.json()["error"]["details"] == {
        "balance_fen": 1,
        "needed_fen": 10002,
        "currency": "CNY",
    }
    payment = gw.call("GET", f"/api/v1/payments/{second['payment_id']}", token).json()
    assert payment["status"] == "requires_authorization"
    counter = gw.ctx.db.read(
        lambda s: s.scalar(select(Dongle.last_counter).where(Dongle.dongle_id == dongle.dongle_id))
    )
    assert counter == late["counter"] - 1  # the refused authorization's counter is not spent
    _credit(gw, household_no, 10001, "SHOP-2")
    assert gw.authorize(second["payment_id"], late).status_code == 200  # the same signature
    assert _wallet(gw, household_no) == 0
    assert gw.ctx.db.read(check) == []


def _at_once(
    gw: GatewayUnderTest, calls: list[tuple[str, dict[str, Any]]]
) -> list[requests.Response]:
    """Send the authorizations together: every thread waits at a barrier, then calls."""
    start = threading.Barrier(len(calls))

    def call(call: tuple[str, dict[str, Any]]) -> requests.Response:
        start.wait()
        return gw.authorize(*call)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(call, calls))


def test_two_payments_racing_for_the_last_yuan_exactly_one_succeeds(gw: GatewayUnderTest) -> None:
    for round_no in range(4):
        household_no, dongles = _unfunded_household(gw, dongles=2)
        _credit(gw, household_no, 10002, f"SHOP-{round_no}")
        tokens = [gw.session_token(d) for d in dongles]
        bills = _bills(gw, tokens[0])[:2]
        # Each dongle of the household pays its own bill: only the wallet is shared.
        created = [gw.create_payment(t, b).json() for t, b in zip(tokens, bills, strict=True)]
        signed = [d.sign_payment(c["sign_fields"]) for d, c in zip(dongles, created, strict=True)]
        answers = _at_once(gw, [(c["payment_id"], a) for c, a in zip(created, signed, strict=True)])
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 409)
        assert loser.json()["error"]["code"] == "insufficient_funds"
        paid = next(c for c, a in zip(created, answers, strict=True) if a.status_code == 200)
        assert _wallet(gw, household_no) == 10002 - paid["bill"]["amount_fen"]
    assert gw.ctx.db.read(check) == []


def test_funding_sources_list_the_wallet_and_set_the_default(gw: GatewayUnderTest) -> None:
    household_no, (dongle,) = _unfunded_household(gw)
    _credit(gw, household_no, 5000, "SHOP-1")
    token = gw.session_token(dongle)
    listed = gw.call("GET", "/api/v1/funding-sources", token)
    assert listed.status_code == 200
    (wallet,) = listed.json()["funding_sources"]
    assert wallet["kind"] == "wallet" and wallet["is_default"] is True
    assert (wallet["balance_fen"], wallet["currency"]) == (5000, "CNY")
    chosen = gw.call(
        "PUT", "/api/v1/funding-sources/default", token, json={"funding_source": wallet["id"]}
    )
    assert chosen.status_code == 200 and chosen.json() == listed.json()
    unknown = {"funding_source": "fund_" + "0" * 32}
    missing = gw.call("PUT", "/api/v1/funding-sources/default", token, json=unknown)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "funding_source_not_found"
    assert gw.call("GET", "/api/v1/funding-sources").status_code == 401


def test_a_payment_cannot_name_another_households_source(gw: GatewayUnderTest) -> None:
    _, (theirs,) = _unfunded_household(gw)
    their_wallet = gw.call("GET", "/api/v1/funding-sources", gw.session_token(theirs)).json()
    household_no, (dongle,) = _unfunded_household(gw)
    _credit(gw, household_no, 50_000, "SHOP-1")
    token = gw.session_token(dongle)
    bill = _bills(gw, token)[0]
    body = {
        "bill_id": bill["bill_id"],
        "amount_fen": bill["amount_fen"],
        "currency": "CNY",
        "funding_source": their_wallet["funding_sources"][0]["id"],
    }
    answer = gw.call(
        "POST", "/api/v1/payments", token, headers={"Idempotency-Key": "k1"}, json=body
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "funding_source_not_found"


def test_a_revoked_mandate_cannot_become_the_default(gw: GatewayUnderTest) -> None:
    household_no, (dongle,) = _unfunded_household(gw)

    def revoked_mandate(s: Session) -> str:
        household = s.scalar(select(Household).where(Household.household_no == household_no))
        assert household is not None
        s.add(
            Mandate(id="mnd_" + "1" * 32, household_id=household.id, card_masked="6222 **** 0001",
                    bank_token="tok", per_payment_limit_fen=100_000, monthly_limit_fen=500_000,
                    currency="CNY", status="revoked", created_at=1)
        )  # fmt: skip
        s.flush()
        s.add(FundingSource(id="fund_" + "1" * 32, household_id=household.id, kind="mandate",
                            is_default=False, mandate_id="mnd_" + "1" * 32, created_at=1))  # fmt: skip
        return "fund_" + "1" * 32

    source = gw.ctx.db.write(revoked_mandate)
    token = gw.session_token(dongle)
    body = {"funding_source": source}
    refused = gw.call("PUT", "/api/v1/funding-sources/default", token, json=body)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "mandate_revoked"
    listed = gw.call("GET", "/api/v1/funding-sources", token).json()["funding_sources"]
    assert [(s["kind"], s["is_default"]) for s in listed] == [("wallet", True), ("mandate", False)]
