"""Exactly once under concurrency, on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from gateway.db.models import Payment
from tests.gateway.helpers import GatewayUnderTest


def test_same_authorization_submitted_concurrently_records_one_payment(
    gw: GatewayUnderTest,
) -> None:
    dongle, token, bills = gw.paying_household()
    created = gw.create_payment(token, bills[0]).json()
    auth = dongle.sign_payment(created["sign_fields"])
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: gw.authorize(created["payment_id"], auth), range(16)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["receipt"]["receipt_no"] for a in answers}) == 1
    count = gw.ctx.db.read(
        lambda s: s.scalar(
            select(func.count()).select_from(Payment).where(Payment.status == "succeeded")
        )
    )
    assert count == 1


def test_many_dongles_paying_different_bills_concurrently_all_succeed(gw: GatewayUnderTest) -> None:
    payers = [gw.paying_household(months=1) for _ in range(6)]

    def pay(payer):
        dongle, token, bills = payer
        created = gw.create_payment(token, bills[0]).json()
        return gw.authorize(created["payment_id"], dongle.sign_payment(created["sign_fields"]))

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(pay, payers))
    assert [a.status_code for a in answers] == [200] * 6
