"""The confirmation text over real HTTP on both databases: the gateway records a payment only
when the text sent hashes to the display_hash the dongle signed and states the payment's amount,
keeps text and hash with the payment, and repeats the hash on the receipt and in its QR."""

from __future__ import annotations

import hashlib
import unicodedata

from gateway.db.models import Payment
from gateway.receipts import load_public_key_pem, verify_qr
from protocol.display import canonical_text
from tests.gateway.helpers import GatewayUnderTest, shown_text


def _created(gw: GatewayUnderTest):
    dongle, token, bills = gw.paying_household()
    response = gw.create_payment(token, bills[0])
    assert response.status_code == 201, response.text
    return dongle, response.json()


def _error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_the_receipt_repeats_the_hash_of_the_text_shown(gw: GatewayUnderTest) -> None:
    dongle, created = _created(gw)
    auth = dongle.sign_payment(created["sign_fields"])
    response = gw.authorize(created["payment_id"], auth)
    assert response.status_code == 200, response.text
    receipt = response.json()["receipt"]
    digest = hashlib.sha256(auth["display_text"].encode()).hexdigest()
    assert receipt["display_hash"] == digest
    pem = gw.call("GET", "/api/v1/gateway").json()["receipt_public_key_pem"].encode()
    assert verify_qr(receipt["qr"], load_public_key_pem(pem)).display_hash == digest
    stored = gw.ctx.db.read(lambda s: s.get(Payment, created["payment_id"]))
    assert (stored.display_text, stored.display_hash.hex()) == (auth["display_text"], digest)


def test_a_text_other_than_the_one_signed_is_refused(gw: GatewayUnderTest) -> None:
    dongle, created = _created(gw)
    auth = dongle.sign_payment(created["sign_fields"])
    other = auth["display_text"].replace("确认缴费", "确认缴费（测试）")
    response = gw.authorize(created["payment_id"], {**auth, "display_text": other})
    assert _error(response) == (401, "signature_invalid")
    assert gw.ctx.db.read(lambda s: s.get(Payment, created["payment_id"]).status) == (
        "requires_authorization"
    )


def test_a_signed_text_without_the_amount_is_refused(gw: GatewayUnderTest) -> None:
    dongle, created = _created(gw)
    fields = created["sign_fields"]
    yuan, fen = divmod(fields["amount_fen"] * 10, 100)
    for text in (
        canonical_text(["确认缴费", "户号：****3456"]),  # no amount at all
        canonical_text(["确认缴费", f"金额：¥{yuan:,}.{fen:02d}"]),  # ten times the amount
        shown_text(fields) + "\n优惠：¥0.50",  # the amount, and another one
    ):
        dongle.signed.clear()
        auth = dongle.sign_payment(fields, text)
        response = gw.authorize(created["payment_id"], auth)
        assert _error(response) == (422, "display_amount_mismatch"), text
        assert "does not state" in response.json()["error"]["message"]


def test_a_text_that_is_not_canonical_is_refused_in_words(gw: GatewayUnderTest) -> None:
    dongle, created = _created(gw)
    auth = dongle.sign_payment(created["sign_fields"])
    decomposed = unicodedata.normalize("NFD", "Café\n") + auth["display_text"]
    for text in (decomposed, auth["display_text"] + "\r"):
        response = gw.authorize(created["payment_id"], {**auth, "display_text": text})
        assert _error(response) == (422, "display_text_invalid")
    missing = {k: v for k, v in auth.items() if k != "display_text"}
    assert gw.authorize(created["payment_id"], missing).status_code == 422
