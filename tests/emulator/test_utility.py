"""The utility simulator, as its own process: signed write-offs, idempotency, faults, statements
and hostile input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.pki import new_key
from tests.emulator.utility import (
    START,
    UtilityUnderTest,
    public_pem,
    signature_header,
    utility_process,
)


@pytest.fixture(scope="module")
def gateway_key() -> ec.EllipticCurvePrivateKey:
    return new_key()


@pytest.fixture
def utility(tmp_path: Path, gateway_key: ec.EllipticCurvePrivateKey) -> Iterator[UtilityUnderTest]:
    with utility_process(tmp_path, public_pem(gateway_key)) as running:
        yield running


def note(n: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "payment_id": f"pay_{n:032x}",
        "biller": "SGCC-BJ",
        "account_no": f"10000000{n:02d}",
        "bill_ref": "E-202505",
        "amount_fen": 12345,
        "currency": "CNY",
        "paid_at": "2026-05-28T20:00:00Z",
        **changes,
    }


def test_writeoff_is_acknowledged_once_per_payment_and_listed_in_the_statement(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    first = utility.post_signed(gateway_key, note())
    assert first.status_code == 200, first.text
    ack = first.json()
    assert ack["status"] == "credited" and ack["utility_ref"].startswith("UT20260528")
    again = utility.post_signed(gateway_key, note())
    assert again.json() == ack
    asked = requests.get(f"{utility.url}/writeoffs/{note()['payment_id']}", timeout=10)
    assert asked.json() == ack
    assert utility.state()["writeoffs"] == {"credited": 1, "rejected": 0, "notifications": 2}
    text = requests.get(utility.url + "/statements/2026-05-28.csv", timeout=10).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [
        {
            "utility_ref": ack["utility_ref"],
            "payment_id": note()["payment_id"],
            "account_no": "1000000001",
            "bill_ref": "E-202505",
            "amount_fen": "12345",
            "currency": "CNY",
            "written_off_at": str(START),
        }
    ]


def test_a_second_payment_for_a_written_off_bill_is_rejected(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    assert utility.post_signed(gateway_key, note(1)).json()["status"] == "credited"
    other = note(2, account_no="1000000001")
    assert utility.post_signed(gateway_key, other).json() == {
        "payment_id": other["payment_id"],
        "status": "rejected",
        "reason": "bill_paid_elsewhere",
    }


def test_unsigned_or_wrongly_signed_notifications_are_refused_with_401(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    body = json.dumps(note()).encode()
    unsigned = requests.post(utility.url + "/writeoffs", data=body, timeout=10)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "signature_invalid"
    stranger = requests.post(
        utility.url + "/writeoffs",
        data=body,
        headers={"TVPay-Signature": signature_header(new_key(), body)},
        timeout=10,
    )
    assert stranger.status_code == 401
    signed_other = signature_header(gateway_key, body.replace(b"12345", b"1"))
    tampered = requests.post(
        utility.url + "/writeoffs", data=body, headers={"TVPay-Signature": signed_other}, timeout=10
    )
    assert tampered.status_code == 401
    assert utility.state()["writeoffs"]["notifications"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 422),
        (json.dumps(note(amount_fen="12345")).encode(), 422),
        (json.dumps(note(amount_fen=-5)).encode(), 422),
        (json.dumps({**note(), "extra": 1}).encode(), 422),
        (json.dumps([note()]).encode(), 422),
        (b"{" + b" " * 20000 + b"}", 413),
    ],
)
def test_bad_notifications_get_typed_errors_and_write_nothing(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey, body: bytes, status: int
) -> None:
    response = requests.post(
        utility.url + "/writeoffs",
        data=body,
        headers={"TVPay-Signature": signature_header(gateway_key, body)},
        timeout=10,
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] in ("invalid_request", "body_too_large")
    assert utility.state()["writeoffs"]["notifications"] == 0


def test_seeded_closed_accounts_and_counter_payments_are_rejected(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    utility.control(
        "POST",
        "/control/seed",
        {
            "accounts": [{"account_no": "1000000001", "status": "closed"}],
            "bills": [
                {"account_no": "1000000002", "bill_ref": "E-202505", "status": "paid_elsewhere"}
            ],
        },
    )
    assert utility.post_signed(gateway_key, note(1)).json()["reason"] == "account_closed"
    assert utility.post_signed(gateway_key, note(2)).json()["reason"] == "bill_paid_elsewhere"
    assert utility.post_signed(gateway_key, note(3)).json()["status"] == "credited"


def test_faults_down_and_reject_then_cleared(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    utility.control("POST", "/control/faults", {"down": True})
    assert utility.post_signed(gateway_key, note(1)).status_code == 503
    utility.control("DELETE", "/control/faults")
    utility.control("POST", "/control/faults", {"reject": {"count": 1, "reason": "account_closed"}})
    assert utility.post_signed(gateway_key, note(1)).json()["status"] == "rejected"
    assert utility.post_signed(gateway_key, note(2)).json()["status"] == "credited"
    assert utility.state()["faults"] == {}


def test_statements_follow_the_simulated_clock(
    utility: UtilityUnderTest, gateway_key: ec.EllipticCurvePrivateKey
) -> None:
    utility.post_signed(gateway_key, note(1))
    utility.advance(86400)
    utility.post_signed(gateway_key, note(2))
    day_two = requests.get(utility.url + "/statements/2026-05-29.csv", timeout=10).text
    assert [r["payment_id"] for r in csv.DictReader(io.StringIO(day_two))] == [
        note(2)["payment_id"]
    ]
    assert requests.get(utility.url + "/statements/latest.csv", timeout=10).status_code == 404


def test_serve_refuses_a_key_file_that_is_not_a_public_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator.utility",
            "serve",
            "--state-dir",
            str(tmp_path),
            "--gateway-key",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"utility: {bad} is not a PEM public key"
