"""Receipts signed by the gateway, and their compact QR form that a phone can verify offline.

    signed bytes = "TVPAY/RECEIPT" | 0x00 | 0x02 | canonical CBOR array of RECEIPT_FIELDS
    qr           = "TVPAYR2." + base64url-without-padding(CBOR array [fields..., signature])

The layout follows protocol.signing so one canonical-CBOR implementation serves both. Version 2
added ``display_hash``: the receipt repeats the hash of the confirmation text the dongle signed.
"""

from __future__ import annotations

import base64
from dataclasses import astuple, dataclass, fields
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.messages import canonical_cbor
from protocol.signing import Algorithm, sign, verify

RECEIPT_TAG = b"TVPAY/RECEIPT"
RECEIPT_LAYOUT_VERSION = 2
QR_PREFIX = "TVPAYR2."
# Receipts issued before display_hash was signed; their QR codes are not readable offline any more.
_OLD_QR_PREFIX = "TVPAYR1."
_MAX_QR = 2048


class ReceiptError(ValueError):
    """A receipt or QR string is malformed or its signature does not verify."""


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    alg: int
    gateway_id: str
    receipt_no: str
    payment_id: str
    biller: str
    account_no_masked: str
    bill_ref: str
    period: str
    amount_fen: int
    currency: str
    paid_at_unix: int
    dongle_id: str
    counter: int
    display_hash: str  # hex SHA-256 of the confirmation text (what `sha256sum` prints)

    def signed_bytes(self) -> bytes:
        return (
            RECEIPT_TAG
            + b"\x00"
            + bytes([RECEIPT_LAYOUT_VERSION])
            + canonical_cbor(list(astuple(self)))
        )


RECEIPT_FIELDS = tuple(f.name for f in fields(SignedReceipt))
_TYPES = {f.name: f.type for f in fields(SignedReceipt)}


def sign_receipt(key: ec.EllipticCurvePrivateKey, receipt: SignedReceipt) -> bytes:
    return sign(key, receipt.signed_bytes())


def to_qr(receipt: SignedReceipt, signature: bytes) -> str:
    body = canonical_cbor([*astuple(receipt), signature])
    return QR_PREFIX + base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def _parse_values(values: Any) -> tuple[SignedReceipt, bytes]:
    if not isinstance(values, list) or len(values) != len(RECEIPT_FIELDS) + 1:
        raise ReceiptError("the receipt has the wrong number of fields")
    *data, signature = values
    for name, value in zip(RECEIPT_FIELDS, data, strict=True):
        wanted = int if _TYPES[name] == "int" else str
        if type(value) is not wanted:
            raise ReceiptError(f"receipt field {name} has the wrong type")
    if not isinstance(signature, bytes):
        raise ReceiptError("the receipt signature is missing")
    receipt = SignedReceipt(*data)
    if receipt.alg != Algorithm.ES256:
        raise ReceiptError(f"unsupported receipt algorithm {receipt.alg}")
    return receipt, signature


def parse_qr(qr: str) -> tuple[SignedReceipt, bytes]:
    """Decode a QR string without checking the signature; ReceiptError when malformed."""
    if isinstance(qr, str) and qr.startswith(_OLD_QR_PREFIX):
        raise ReceiptError(
            "this receipt QR code is of an earlier format; look the receipt up at the gateway "
            "by the receipt number printed under it"
        )
    if not isinstance(qr, str) or not qr.startswith(QR_PREFIX) or len(qr) > _MAX_QR:
        raise ReceiptError(f"a receipt QR code starts with {QR_PREFIX}")
    text = qr[len(QR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = cbor2.loads(raw)
    except (ValueError, cbor2.CBORDecodeError):
        raise ReceiptError("the receipt QR code is damaged; scan it again") from None
    return _parse_values(values)


def load_public_key_pem(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise ReceiptError("the gateway public key is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ReceiptError("the gateway public key is not an EC key")
    return key


def verify_qr(qr: str, public_key: ec.EllipticCurvePublicKey) -> SignedReceipt:
    """The receipt inside a QR string when the gateway's signature verifies; ReceiptError if not."""
    receipt, signature = parse_qr(qr)
    if not verify(public_key, receipt.signed_bytes(), signature):
        raise ReceiptError("the receipt signature does not verify: this is not a genuine receipt")
    return receipt
