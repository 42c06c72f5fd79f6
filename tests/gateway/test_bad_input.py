"""Hostile and malformed input: typed 4xx answers, never 5xx."""

from __future__ import annotations

from tests.gateway.helpers import GatewayUnderTest


def test_malformed_json_is_400(gw: GatewayUnderTest) -> None:
    response = gw.call(
        "POST",
        "/api/v1/device-sessions/challenge",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "malformed_json")


def test_unknown_field_is_refused(gw: GatewayUnderTest) -> None:
    response = gw.call(
        "POST", "/api/v1/device-sessions/challenge", json={"dongle_id": "TVP1", "extra": 1}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_request")


def test_wrong_type_is_refused(gw: GatewayUnderTest) -> None:
    _dongle, token, bills = gw.paying_household()
    body = {
        "bill_id": bills[0]["bill_id"],
        "amount_fen": str(bills[0]["amount_fen"]),
        "currency": "CNY",
    }
    response = gw.call(
        "POST", "/api/v1/payments", token, json=body, headers={"Idempotency-Key": "x"}
    )
    assert response.status_code == 422


def test_huge_body_is_413(gw: GatewayUnderTest) -> None:
    response = gw.call(
        "POST",
        "/api/v1/device-sessions/challenge",
        data=b"x" * 200_000,
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "body_too_large")


def test_bad_base64_signature_is_422(gw: GatewayUnderTest) -> None:
    body = {"dongle_id": "TVP1", "key_rev": 1, "counter": 1, "signature": "@@@"}
    response = gw.call("POST", "/api/v1/payments/pay_" + "0" * 32 + "/authorize", json=body)
    assert response.status_code == 422


def test_nul_in_path_is_a_clean_4xx(gw: GatewayUnderTest) -> None:
    response = gw.call("GET", "/api/v1/receipts/rcp_%00")
    assert 400 <= response.status_code < 500
