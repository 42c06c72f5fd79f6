"""The shop downstairs (代售点) through the real gateway over HTTP, on SQLite and PostgreSQL: a
shop sells to an account bound to no household by its 户号 and to a customer's card, pays from
its float (never more than it holds, even with two sales racing for the last yuan), earns a
commission posted with each sale and returned with its refund, and sees its day; a home dongle
cannot sell, and a dongle is registered only for the kind of household its role says."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import select

from gateway.db.models import LedgerTransfer
from gateway.ledger import accounts, balance, check
from gateway.shop.report import SHANGHAI
from gateway.writeoff import UtilityAnswer, record_answer
from tests.gateway.card_world import Box, card_world
from tests.gateway.helpers import GatewayUnderTest
from tests.gateway.shop_world import BILLER, COMMISSION_BP, customer_meter, new_shop, register

PAYABLE = accounts.payable(BILLER)


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


def ledger(gw: GatewayUnderTest, account: str) -> int:
    return gw.ctx.db.read(lambda s: balance(s, account))


def postings(gw: GatewayUnderTest, ref: str) -> dict[str, int]:
    query = select(LedgerTransfer.kind, LedgerTransfer.amount_fen).where(LedgerTransfer.ref == ref)
    return dict(gw.ctx.db.read(lambda s: s.execute(query).all()))


def utility_answers(gw: GatewayUnderTest, payment_id: str, answer: UtilityAnswer) -> None:
    gw.ctx.db.write(lambda s: record_answer(s, payment_id, answer, 1))


def shanghai_day(receipt: dict[str, Any]) -> str:
    return datetime.fromtimestamp(receipt["paid_at_unix"], SHANGHAI).date().isoformat()


def test_a_shop_sells_to_an_unbound_account_by_its_huhao(gw: GatewayUnderTest) -> None:
    shop = new_shop(gw, float_fen=100_000)
    account_no = customer_meter(gw)
    payable_before = ledger(gw, PAYABLE)
    created = shop.sell(20_000, account_no=account_no, biller=BILLER)
    assert created.status_code == 201, created.text
    sale = created.json()
    assert sale["display"]["account_no_masked"].endswith(account_no[-4:])
    assert sale["purchase"]["fulfilment"] == "awaiting_payment"
    paid = shop.pay(sale)
    assert paid.status_code == 200, paid.text
    assert paid.json()["receipt"]["household_no"] == shop.shop_no
    # The float paid; the shop earned 0.5% of it, carved out of what the utility is owed.
    commission = 20_000 * COMMISSION_BP // 10_000
    assert shop.float_fen() == 80_000
    assert ledger(gw, accounts.commission(shop.shop_no)) == commission == 100
    assert ledger(gw, PAYABLE) - payable_before == 20_000 - commission
    assert postings(gw, sale["payment_id"]) == {"payment": 20_000, "commission": commission}
    # The utility credits the account's balance: the remote meter's fulfilment.
    purchase_id = sale["purchase"]["purchase_id"]
    utility_answers(gw, sale["payment_id"], UtilityAnswer("credited", utility_ref="UT-9"))
    done = shop.call("GET", f"/purchases/{purchase_id}").json()
    assert (done["fulfilment"], done["payment_status"]) == ("done", "credited")
    assert gw.ctx.db.read(check) == []


def test_a_shop_sells_to_a_card_and_writes_it_in_its_own_slot(gw: GatewayUnderTest) -> None:
    world = card_world(gw)
    shop = new_shop(gw, float_fen=50_000)
    box = Box(gw, shop.dongle, shop.token)
    created = shop.sell(10_000, card=box.read(world.card))
    assert created.status_code == 201, created.text
    sale = created.json()
    assert sale["purchase"]["kind"] == "card" and sale["purchase"]["card_count"] == 1
    assert shop.pay(sale).status_code == 200
    # The customer's card sits in the shop box's slot: written there, read back, confirmed.
    assert box.write(world.card)["action"] == "write"
    confirmed = box.confirm(world.card)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["fulfilment"] == "done"
    # At home, the meter takes the purchase from the card.
    before = world.meter.balance_fen
    world.meter.insert(world.card)
    assert world.meter.balance_fen == before + 10_000
    assert shop.float_fen() == 40_000
    assert world.wallet_fen() == 100_000  # the household paid nothing
    assert gw.ctx.db.read(check) == []


def test_a_short_float_is_refused_before_the_pin_with_the_numbers(gw: GatewayUnderTest) -> None:
    shop = new_shop(gw, float_fen=5_000)
    account_no = customer_meter(gw)
    refused = shop.sell(10_000, account_no=account_no, biller=BILLER)
    assert (refused.status_code, error_code(refused)) == (409, "insufficient_funds")
    error = refused.json()["error"]
    assert error["details"] == {"balance_fen": 5_000, "needed_fen": 10_000, "currency": "CNY"}
    assert "¥50.00" in error["message"] and "¥100.00" in error["message"]
    assert "float" in error["message"]
    # The rules refuse as for a household's purchase, and nothing was created or taken.
    odd = shop.sell(1_234, account_no=account_no, biller=BILLER)
    assert (odd.status_code, error_code(odd)) == (422, "amount_not_multiple")
    assert shop.report(datetime.now(SHANGHAI).date().isoformat())["sales"] == []
    assert shop.float_fen() == 5_000


def _at_once(gw: GatewayUnderTest, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Send the authorizations together: every thread waits at a barrier, then calls."""
    start = threading.Barrier(len(calls))

    def call(call: tuple[str, dict[str, Any]]) -> requests.Response:
        start.wait()
        return gw.authorize(*call)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(call, calls))


def test_two_sales_racing_for_the_last_yuan_of_float_exactly_one_is_paid(
    gw: GatewayUnderTest,
) -> None:
    for _ in range(3):
        shop = new_shop(gw, float_fen=10_500)
        # Two customers' meters: a meter takes one purchase at a time, the float is shared.
        created = [
            shop.sell(10_000, account_no=customer_meter(gw), biller=BILLER).json() for _ in range(2)
        ]
        answers = _at_once(gw, [(c["payment_id"], shop.sign(c)) for c in created])
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 409)
        assert error_code(loser) == "insufficient_funds"
        assert shop.float_fen() == 500
        assert ledger(gw, accounts.commission(shop.shop_no)) == 50  # one sale's commission
    assert gw.ctx.db.read(check) == []


def test_a_refund_of_a_sale_returns_its_commission(gw: GatewayUnderTest) -> None:
    shop = new_shop(gw, float_fen=100_000)
    refused, refunded = (
        shop.sell(amount, account_no=customer_meter(gw), biller=BILLER).json()
        for amount in (30_000, 12_000)
    )
    for sale in (refused, refunded):
        assert shop.pay(sale).status_code == 200
    assert ledger(gw, accounts.commission(shop.shop_no)) == 150 + 60
    # The utility refuses one sale; staff refund the other: each refund takes its commission.
    utility_answers(gw, refused["payment_id"], UtilityAnswer("rejected", reason="account_closed"))
    staff = gw.staff(
        "POST", f"/payments/{refunded['payment_id']}/refund", json={"reason": "wrong 户号"}
    )
    assert staff.status_code == 200, staff.text
    for sale, amount, commission in ((refused, 30_000, 150), (refunded, 12_000, 60)):
        assert postings(gw, sale["payment_id"]) == {
            "payment": amount,
            "commission": commission,
            "refund": amount,
            "commission_back": commission,
        }
        purchase = shop.call("GET", f"/purchases/{sale['purchase']['purchase_id']}").json()
        assert purchase["fulfilment"] == "reversed"
    assert ledger(gw, accounts.commission(shop.shop_no)) == 0
    assert shop.float_fen() == 100_000
    assert gw.ctx.db.read(check) == []


def test_the_report_shows_the_days_sales_float_and_commission(gw: GatewayUnderTest) -> None:
    shop = new_shop(gw, float_fen=100_000)
    kept, reversed_ = (
        shop.sell(amount, account_no=customer_meter(gw), biller=BILLER).json()
        for amount in (20_000, 10_000)
    )
    receipt = shop.pay(kept).json()["receipt"]
    assert shop.pay(reversed_).status_code == 200
    utility_answers(gw, reversed_["payment_id"], UtilityAnswer("rejected", reason="disputed"))
    unpaid = shop.sell(5_000, account_no=customer_meter(gw), biller=BILLER)
    assert unpaid.status_code == 201  # created, never signed: not a sale
    day = shanghai_day(receipt)
    report = shop.report(day)
    assert {k: v for k, v in report.items() if k != "sales"} == {
        "date": day,
        "count": 1,
        "total_fen": 20_000,
        "commission_fen": 100,
        "float_fen": 80_000,
        "currency": "CNY",
    }
    by_id = {sale["payment_id"]: sale for sale in report["sales"]}
    assert set(by_id) == {kept["payment_id"], reversed_["payment_id"]}
    assert by_id[kept["payment_id"]] == {
        "purchase_id": kept["purchase"]["purchase_id"],
        "payment_id": kept["payment_id"],
        "account_no_masked": kept["display"]["account_no_masked"],
        "meter_kind": "remote",
        "amount_fen": 20_000,
        "commission_fen": 100,
        "status": "pending",
        "at": receipt["paid_at"],
    }
    assert by_id[reversed_["payment_id"]]["status"] == "reversed"
    other = shop.report("2001-01-01")
    assert (other["sales"], other["count"], other["total_fen"]) == ([], 0, 0)
    bad = shop.call("GET", "/shop/report", params={"date": "yesterday"})
    assert (bad.status_code, error_code(bad)) == (422, "invalid_request")


def test_a_meter_with_a_pending_purchase_is_refused(gw: GatewayUnderTest) -> None:
    shop = new_shop(gw, float_fen=100_000)
    account_no = customer_meter(gw)
    first = shop.sell(10_000, account_no=account_no, biller=BILLER).json()
    assert shop.pay(first).status_code == 200  # pending until the utility credits it
    again = shop.sell(10_000, account_no=account_no, biller=BILLER)
    assert (again.status_code, error_code(again)) == (409, "purchase_pending")
    assert shop.float_fen() == 90_000


def test_a_home_dongle_cannot_sell_or_see_a_shop_day(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    account_no = customer_meter(gw)
    body = {"account_no": account_no, "biller": BILLER, "amount_fen": 10_000, "currency": "CNY"}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    sale = gw.call("POST", "/api/v1/shop/sales", token, json=body, headers=headers)
    assert (sale.status_code, error_code(sale)) == (403, "not_a_shop")
    day = gw.call("GET", "/api/v1/shop/report", token, params={"date": "2025-01-01"})
    assert (day.status_code, error_code(day)) == (403, "not_a_shop")
    anonymous = gw.call("POST", "/api/v1/shop/sales", json=body, headers={"Idempotency-Key": "k"})
    assert anonymous.status_code == 401


def test_a_dongle_is_registered_only_for_its_roles_kind_of_household(
    gw: GatewayUnderTest,
) -> None:
    shop = new_shop(gw, float_fen=0)
    home = gw.household()
    for household_no, role, what in (
        (home, "shop", "--role home"),
        (shop.shop_no, "home", "--role shop"),
    ):
        dongle = gw.manufacturer.new_dongle()
        dongle.generate_key()
        refused = register(gw, dongle, household_no, role)
        assert (refused.status_code, error_code(refused)) == (409, "dongle_role_mismatch")
        assert what in refused.json()["error"]["message"]
    # Without a role, a dongle is a home's, as before.
    assert gw.provision(home).dongle_id


def test_bad_sales_and_shops_are_refused_with_a_clear_error(gw: GatewayUnderTest) -> None:
    shop = new_shop(gw, float_fen=100_000)
    account_no = customer_meter(gw)
    world_card = {"issuer": "00" * 32, "purchase": "00" * 32, "writeback": "00" * 32}
    cases = [
        ({}, 422, "customer_invalid"),
        ({"account_no": account_no}, 422, "customer_invalid"),
        ({"account_no": account_no, "biller": BILLER, "card": world_card}, 422, "customer_invalid"),
        ({"account_no": "0000000000", "biller": BILLER}, 404, "meter_not_found"),
        ({"account_no": account_no, "biller": "NO-SUCH"}, 404, "meter_not_found"),
        ({"account_no": "../x", "biller": BILLER}, 422, "invalid_request"),
        ({"card": world_card}, 422, "card_not_authentic"),
    ]
    for customer, status, code in cases:
        answer = shop.sell(10_000, **customer)
        assert (answer.status_code, error_code(answer)) == (status, code), answer.text
    unkeyed = shop.call("POST", "/shop/sales", json={"amount_fen": 1, "currency": "CNY"})
    assert unkeyed.status_code == 400
    shops = [
        ({"shop_no": shop.shop_no, "name": "x", "address": "y", "commission_bp": 1}, 409),
        ({"shop_no": "S-new", "name": "x", "address": "y", "commission_bp": 10_001}, 422),
        ({"shop_no": "S new", "name": "x", "address": "y", "commission_bp": 1}, 422),
    ]
    for body, status in shops:
        assert gw.staff("POST", "/shops", json=body).status_code == status
    assert shop.float_fen() == 100_000
    assert gw.ctx.db.read(check) == []
