"""What a dongle gives whoever holds it without its PIN (docs/security.md, "Without the PIN").

Opening a device session needs the dongle's signature but no PIN, so the TV can show bills at
start. Whoever finds a lost dongle can therefore read everything a session can read. The rule
held here: a session shows what the TV shows a stranger passing the sofa (masked holder name,
masked address, biller, the 户号 masked to its last four digits, periods, amounts, due dates,
the household's own payment history) and never the holder's or the household's full name, the
full address, the full 户号, or anything that proves ownership (bind codes, holder names to bind with).
"""

from __future__ import annotations

import json
from typing import Any

from gateway.db.models import Bill, UtilityAccount
from tests.gateway.helpers import GatewayUnderTest

_HOLDER = "张伟"  # helpers.bill_rows and GatewayUnderTest.household use these
_ADDRESS = "北京市朝阳区建设路1号"


def _everything_a_session_reads(gw: GatewayUnderTest, token: str) -> list[Any]:
    """Every household endpoint's answer to a session opened without the PIN, one payment made."""
    answers: list[Any] = []

    def get(path: str) -> Any:
        response = gw.call("GET", path, token)
        assert response.status_code == 200, (path, response.text)
        answers.append(response.json())
        return response.json()

    get("/api/v1/household")
    for account in get("/api/v1/accounts")["accounts"]:
        get(f"/api/v1/accounts/{account['account_id']}/bills")
        get(f"/api/v1/accounts/{account['account_id']}/usage")
    bills = get("/api/v1/bills")["bills"]
    created = gw.create_payment(token, bills[0])
    assert created.status_code == 201, created.text
    answers.append(created.json())
    for payment in get("/api/v1/payments")["payments"]:
        get(f"/api/v1/payments/{payment['payment_id']}")
    return answers


def test_a_session_without_the_pin_never_shows_full_names_numbers_or_addresses(
    gw: GatewayUnderTest,
) -> None:
    household_no = gw.household()
    bill_ids = gw.bills(household_no, months=2)
    account_no = gw.ctx.db.read(
        lambda s: s.get(UtilityAccount, s.get(Bill, bill_ids[0]).account_id).account_no
    )
    dongle = gw.provision(household_no)
    # SIGN_SESSION needs no PIN: this token is what a finder of the dongle gets.
    token = gw.session_token(dongle)

    seen = json.dumps(_everything_a_session_reads(gw, token), ensure_ascii=False)

    assert account_no[-4:] in seen  # the masked 户号, as every screen shows it
    assert account_no not in seen
    assert _HOLDER not in seen
    assert _ADDRESS not in seen
    assert "建设路" not in seen  # not even the street: the address stops at its district
    assert "张*" in seen  # the masked name is what the TV greets the household with
    assert "bind_code" not in seen


def test_a_session_reads_only_its_own_household(gw: GatewayUnderTest) -> None:
    mine = gw.household()
    gw.bills(mine, months=1)
    theirs = gw.household()
    their_bills = gw.bills(theirs, months=1)
    token = gw.session_token(gw.provision(mine))

    listed = gw.call("GET", "/api/v1/bills", token).json()["bills"]
    assert their_bills[0] not in {bill["bill_id"] for bill in listed}
    paying_theirs = gw.call(
        "POST",
        "/api/v1/payments",
        token,
        headers={"Idempotency-Key": "k-theirs"},
        json={"bill_id": their_bills[0], "amount_fen": 10001, "currency": "CNY"},
    )
    assert paying_theirs.status_code == 404, paying_theirs.text
