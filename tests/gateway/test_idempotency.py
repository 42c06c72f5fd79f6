"""Idempotency-Key semantics on payment creation (Stripe's)."""

from __future__ import annotations

from tests.gateway.helpers import GatewayUnderTest


def test_same_key_and_body_replays_the_first_answer(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    first = gw.create_payment(token, bills[0], key="k-1")
    again = gw.create_payment(token, bills[0], key="k-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


def test_same_key_with_another_body_is_refused(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    gw.create_payment(token, bills[0], key="k-2")
    response = gw.create_payment(token, bills[1], key="k-2")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_business_error_is_stored_and_replayed(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    wrong = {**bills[0], "amount_fen": 1}
    first = gw.create_payment(token, wrong, key="k-3")
    again = gw.create_payment(token, wrong, key="k-3")
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_concurrent_request_with_the_same_key_gets_409(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    household_id = gw.call("GET", "/api/v1/household", token).json()["household_no"]
    from sqlalchemy import select

    from gateway.db.models import Household

    scope = gw.ctx.db.read(
        lambda s: s.scalar(select(Household.id).where(Household.household_no == household_id))
    )
    with gw.ctx.in_flight.hold(scope, "k-4"):  # the first request is still running
        response = gw.create_payment(token, bills[0], key="k-4")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_request_in_progress"


def test_missing_key_is_refused(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    body = {"bill_id": bills[0]["bill_id"], "amount_fen": bills[0]["amount_fen"], "currency": "CNY"}
    response = gw.call("POST", "/api/v1/payments", token, json=body)
    assert response.json()["error"]["code"] == "idempotency_key_missing"
