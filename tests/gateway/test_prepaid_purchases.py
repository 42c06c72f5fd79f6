"""Prepaid purchases through the real gateway over HTTP, on SQLite and PostgreSQL: the rules'
refusals before the PIN, quotes, replaced purchases whose late signature takes no money, one
pending purchase per meter, STS tokens issued once, and bills lists that never show a purchase."""

from __future__ import annotations

import json

from sqlalchemy import select

from emulator.meters.token_meter import VirtualTokenMeter
from gateway.db.models import OutboxMessage, PrepaidMeter
from gateway.ledger import check
from gateway.prepaid.tokens import decoder_key, identity
from gateway.writeoff import UtilityAnswer, record_answer
from protocol.sts import decode_token
from tests.gateway.helpers import GatewayUnderTest
from tests.gateway.prepaid_world import prepaid_household


def outbox_payload(gw: GatewayUnderTest, payment_id: str) -> dict | None:
    row = gw.ctx.db.read(
        lambda s: s.scalar(select(OutboxMessage.payload).where(OutboxMessage.key == payment_id))
    )
    return None if row is None else json.loads(row)


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_the_rules_refuse_before_the_pin_with_numbers_in_yuan(gw: GatewayUnderTest) -> None:
    home = prepaid_household(gw, "remote")
    cases = [
        (1234, "amount_not_multiple", "¥10.00"),
        (500, "amount_below_minimum", "¥10.00"),
        (200000, "amount_above_maximum", "¥1,000.00"),
    ]
    for amount, code, yuan in cases:
        for response in (
            home.call("GET", f"/meters/{home.meter_id}/quote", params={"amount_fen": amount}),
            home.buy(amount),
        ):
            assert response.status_code == 422, response.text
            assert error_code(response) == code
            assert yuan in response.json()["error"]["message"]
    # The meter holds ¥2,950.00 of the ¥3,000.00 it may hold: ¥50.00 more at most.
    gw.ctx.db.write(
        lambda s: setattr(s.get(PrepaidMeter, home.meter_id), "last_balance_fen", 295000)
    )
    refused = home.buy(10000)
    assert (refused.status_code, error_code(refused)) == (422, "balance_above_maximum")
    assert "¥2,950.00" in refused.json()["error"]["message"]
    assert "¥50.00" in refused.json()["error"]["message"]
    assert home.buy(5000).status_code == 201
    # Nothing was charged, nothing queued by the refusals.
    assert home.wallet() == 500_000
    assert home.call("GET", "/purchases").json()["purchases"][0]["amount_fen"] == 5000


def test_a_quote_fills_the_tiers_exactly(gw: GatewayUnderTest) -> None:
    home = prepaid_household(gw, "remote")
    quote = home.call("GET", f"/meters/{home.meter_id}/quote", params={"amount_fen": 10000})
    assert quote.status_code == 200, quote.text
    # ¥100.00 at ¥0.5603/kWh: 10^10 micro-fen ÷ 56030 per Wh, rounded down.
    assert quote.json() == {
        "amount_fen": 10000,
        "currency": "CNY",
        "energy_wh": 10**10 // 56030,
        "tiers": [{"tier": 1, "energy_wh": 178475, "price_milli_fen_per_kwh": 56030}],
        "year_usage_wh": 0,
    }


def test_a_new_purchase_replaces_an_unpaid_one_whose_late_signature_takes_nothing(
    gw: GatewayUnderTest,
) -> None:
    home = prepaid_household(gw, "remote")
    first = home.buy(5000).json()
    second = home.buy(10000).json()
    assert home.purchase(first["purchase"]["purchase_id"])["fulfilment"] == "void"
    late = home.pay(first)
    assert (late.status_code, error_code(late)) == (410, "purchase_replaced")
    assert home.wallet() == 500_000  # no money moved
    assert outbox_payload(gw, first["payment_id"]) is None
    paid = home.pay(second)
    assert paid.status_code == 200, paid.text
    assert home.wallet() == 490_000
    history = home.call("GET", "/purchases").json()["purchases"]
    assert [p["purchase_id"] for p in history] == [second["purchase"]["purchase_id"]]
    # The replaced purchase's payment shows as canceled, never payable.
    payment = home.call("GET", f"/payments/{first['payment_id']}").json()
    assert payment["status"] == "canceled"
    assert gw.ctx.db.read(check) == []


def test_a_pending_purchase_blocks_the_next_until_the_utility_credits_it(
    gw: GatewayUnderTest,
) -> None:
    home = prepaid_household(gw, "remote")
    created = home.buy(5000).json()
    assert home.pay(created).status_code == 200
    purchase_id = created["purchase"]["purchase_id"]
    assert home.purchase(purchase_id)["fulfilment"] == "pending"
    meters = home.call("GET", "/meters").json()["meters"]
    assert meters[0]["pending_purchase_id"] == purchase_id
    blocked = home.buy(5000)
    assert (blocked.status_code, error_code(blocked)) == (409, "purchase_pending")
    # A remote meter's notification is queued at payment and says what was bought.
    notice = outbox_payload(gw, created["payment_id"])
    assert notice["kind"] == "purchase"
    assert notice["purchase"] == {
        "meter_no": "R" + home.account_no,
        "meter_kind": "remote",
        "energy_wh": created["purchase"]["energy_wh"],
    }
    answer = UtilityAnswer("credited", utility_ref="UT-1")
    gw.ctx.db.write(lambda s: record_answer(s, created["payment_id"], answer, 1))
    done = home.purchase(purchase_id)
    assert (done["fulfilment"], done["payment_status"]) == ("done", "credited")
    assert home.buy(5000).status_code == 201


def test_a_refused_purchase_is_reversed_and_its_bill_never_paid_again(gw: GatewayUnderTest) -> None:
    home = prepaid_household(gw, "remote")
    created = home.buy(5000).json()
    assert home.pay(created).status_code == 200
    answer = UtilityAnswer("rejected", reason="not_prepaid")
    gw.ctx.db.write(lambda s: record_answer(s, created["payment_id"], answer, 1))
    reversed_ = home.purchase(created["purchase"]["purchase_id"])
    assert (reversed_["fulfilment"], reversed_["payment_status"]) == ("reversed", "refunded")
    assert home.wallet() == 500_000
    again = gw.create_payment(home.token, created["bill"])
    assert (again.status_code, error_code(again)) == (410, "purchase_replaced")
    assert home.buy(5000).status_code == 201  # the meter is free again
    assert gw.ctx.db.read(check) == []


def test_a_meter_whose_account_the_utility_closed_is_refused_before_the_pin(
    gw: GatewayUnderTest,
) -> None:
    home = prepaid_household(gw, "remote")
    created = home.buy(5000).json()
    assert home.pay(created).status_code == 200
    answer = UtilityAnswer("rejected", reason="account_closed")
    gw.ctx.db.write(lambda s: record_answer(s, created["payment_id"], answer, 1))
    assert home.wallet() == 500_000  # refunded
    refused = home.buy(5000)
    assert (refused.status_code, error_code(refused)) == (409, "account_closed")
    assert home.wallet() == 500_000
    assert gw.ctx.db.read(check) == []


def test_bill_lists_never_show_a_purchase_bill(gw: GatewayUnderTest) -> None:
    home = prepaid_household(gw, "remote")
    gw.bills(home.household_no, months=3)  # a second account, with bills
    before = home.call("GET", "/accounts").json()
    # Each billed account once; the prepaid meter's account is listed with its meter instead.
    assert len(before["accounts"]) == 1
    meters = home.call("GET", "/meters").json()["meters"]
    assert [m["meter_id"] for m in meters] == [home.meter_id]
    created = home.buy(5000).json()
    bills = home.call("GET", "/bills", params={"status": "all"}).json()["bills"]
    assert created["bill"]["bill_id"] not in {b["bill_id"] for b in bills}
    assert created["bill"]["bill_ref"] == "PUR-" + created["purchase"]["purchase_id"][4:]
    assert home.call("GET", "/accounts").json() == before  # amounts due unchanged


def test_a_token_is_issued_once_and_accepted_once_by_the_meter(
    gw: GatewayUnderTest, tmp_path
) -> None:
    home = prepaid_household(gw, "token")
    created = home.buy(5000).json()
    purchase_id = created["purchase"]["purchase_id"]
    assert home.purchase(purchase_id)["token"] is None  # not paid: no token
    assert home.pay(created).status_code == 200
    # Not yet fulfilled: the utility is not told of a sale the meter cannot have.
    assert outbox_payload(gw, created["payment_id"]) is None
    first = home.purchase(purchase_id)
    assert first["fulfilment"] == "done" and len(first["token"]) == 20
    assert home.purchase(purchase_id)["token"] == first["token"]
    assert outbox_payload(gw, created["payment_id"])["purchase"]["meter_kind"] == "token"

    meter_row = gw.ctx.db.read(lambda s: s.get(PrepaidMeter, home.meter_id))
    sts_meter = identity(meter_row)
    key = decoder_key(gw.ctx.keys.vending_secret, meter_row)
    data = decode_token(first["token"], decoder_key=key)
    assert data.units == created["purchase"]["energy_wh"] // 100
    assert data.tid == meter_row.last_tid
    meter = VirtualTokenMeter(sts_meter, key, tmp_path / "meter.json")
    assert meter.enter(first["token"]).accepted
    assert not meter.enter(first["token"]).accepted  # the same token twice: refused

    # The next token on this meter, within the same minute, still gets a new TID.
    second = home.buy(5000).json()
    assert home.pay(second).status_code == 200
    token2 = home.purchase(second["purchase"]["purchase_id"])["token"]
    assert decode_token(token2, decoder_key=key).tid == data.tid + 1
    assert meter.enter(token2).accepted
