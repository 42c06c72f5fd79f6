"""Payments over real HTTP on both databases: create, authorize, and every refusal."""

from __future__ import annotations

import time

from sqlalchemy import func, select, update

from gateway.db.models import Payment
from gateway.receipts import load_public_key_pem, verify_qr
from tests.gateway.helpers import GatewayUnderTest, b64


def _pay(gw: GatewayUnderTest, dongle, token, bill):
    created = gw.create_payment(token, bill)
    assert created.status_code == 201, created.text
    body = created.json()
    return body, dongle.sign_payment(body["sign_fields"])


def test_payment_succeeds_and_receipt_verifies(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created, auth = _pay(gw, dongle, token, bills[0])
    response = gw.authorize(created["payment_id"], auth)
    assert response.status_code == 200, response.text
    receipt = response.json()["receipt"]
    pem = gw.call("GET", "/api/v1/gateway").json()["receipt_public_key_pem"].encode()
    signed = verify_qr(receipt["qr"], load_public_key_pem(pem))
    assert (signed.amount_fen, signed.payment_id) == (bills[0]["amount_fen"], created["payment_id"])
    bill_state = gw.call("GET", f"/api/v1/accounts/{bills[0]['account_id']}/bills", token).json()
    assert {b["bill_id"]: b["status"] for b in bill_state["bills"]}[bills[0]["bill_id"]] == "paid"


def test_sign_fields_are_the_protocol_request_fields_but_the_display_hash(
    gw: GatewayUnderTest,
) -> None:
    from protocol.signing import PAYMENT_REQUEST_FIELDS

    _dongle, token, bills = gw.paying_household()
    created = gw.create_payment(token, bills[0]).json()
    # display_hash is the hash of what the box showed: the box adds it, never the gateway.
    assert set(created["sign_fields"]) == set(PAYMENT_REQUEST_FIELDS) - {"display_hash"}


def test_retried_authorization_returns_the_same_receipt(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created, auth = _pay(gw, dongle, token, bills[0])
    first = gw.authorize(created["payment_id"], auth).json()
    second = gw.authorize(created["payment_id"], auth)
    assert second.status_code == 200
    assert second.json()["receipt"] == first["receipt"]


def test_counter_not_above_last_seen_is_refused(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created, auth = _pay(gw, dongle, token, bills[0])
    assert gw.authorize(created["payment_id"], auth).status_code == 200
    dongle.counter -= 1  # a dongle whose counter went backwards
    created2, auth2 = _pay(gw, dongle, token, bills[1])
    response = gw.authorize(created2["payment_id"], auth2)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "counter_replayed"


def test_tampered_amount_fails_signature_check(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created = gw.create_payment(token, bills[0]).json()
    fields = {**created["sign_fields"], "amount_fen": 1}
    response = gw.authorize(created["payment_id"], dongle.sign_payment(fields))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_invalid"


def test_amount_other_than_the_bill_is_refused_at_create(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    response = gw.create_payment(token, {**bills[0], "amount_fen": bills[0]["amount_fen"] - 1})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "amount_mismatch"


def test_second_payment_of_a_paid_bill_is_refused(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    first, auth = _pay(gw, dongle, token, bills[0])
    second, auth2 = _pay(gw, dongle, token, bills[0])
    assert gw.authorize(first["payment_id"], auth).status_code == 200
    response = gw.authorize(second["payment_id"], auth2)
    assert response.json()["error"]["code"] == "bill_already_paid"
    state = gw.call("GET", f"/api/v1/payments/{second['payment_id']}", token).json()
    assert state["status"] == "canceled"
    assert gw.create_payment(token, bills[0]).json()["error"]["code"] == "bill_already_paid"


def _expire(gw: GatewayUnderTest, payment_id: str, ago: int) -> None:
    expired_at = int(time.time()) - ago
    gw.ctx.db.write(
        lambda s: s.execute(
            update(Payment).where(Payment.id == payment_id).values(expires_at=expired_at)
        )
    )


def test_a_signature_kept_through_an_outage_still_pays_after_expiry(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created, auth = _pay(gw, dongle, token, bills[0])
    _expire(gw, created["payment_id"], ago=3600)  # the box's network was down for an hour
    assert (
        gw.call("GET", f"/api/v1/payments/{created['payment_id']}", token).json()["status"]
        == "expired"
    )
    response = gw.authorize(created["payment_id"], auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    assert gw.authorize(created["payment_id"], auth).json() == response.json()


def test_expired_payment_cannot_be_authorized_after_the_grace(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created, auth = _pay(gw, dongle, token, bills[0])
    _expire(gw, created["payment_id"], ago=gw.ctx.config.signed_grace_seconds + 60)
    response = gw.authorize(created["payment_id"], auth)
    assert (response.status_code, response.json()["error"]["code"]) == (410, "payment_expired")
    assert (
        gw.call("GET", f"/api/v1/payments/{created['payment_id']}", token).json()["status"]
        == "expired"
    )


def test_dongle_of_another_household_cannot_pay(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    stranger = gw.provision(gw.household())
    created = gw.create_payment(token, bills[0]).json()
    response = gw.authorize(created["payment_id"], stranger.sign_payment(created["sign_fields"]))
    assert response.json()["error"]["code"] == "dongle_not_in_household"


def test_failed_authorization_writes_nothing(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created, auth = _pay(gw, dongle, token, bills[0])
    bad = {**auth, "signature": b64(bytes(64))}
    assert gw.authorize(created["payment_id"], bad).status_code == 401
    succeeded = gw.ctx.db.read(
        lambda s: s.scalar(
            select(func.count()).select_from(Payment).where(Payment.status == "succeeded")
        )
    )
    assert succeeded == 0
    assert gw.authorize(created["payment_id"], auth).status_code == 200


def test_payment_history_lists_the_payment_with_its_receipt(gw: GatewayUnderTest) -> None:
    dongle, token, bills = gw.paying_household()
    created, auth = _pay(gw, dongle, token, bills[0])
    receipt = gw.authorize(created["payment_id"], auth).json()["receipt"]
    history = gw.call("GET", "/api/v1/payments", token).json()["payments"]
    assert [p["payment_id"] for p in history] == [created["payment_id"]]
    assert history[0]["receipt"]["receipt_no"] == receipt["receipt_no"]
    public = gw.call("GET", f"/api/v1/receipts/{receipt['receipt_no']}").json()
    assert public["receipt"]["signature"] == receipt["signature"]
