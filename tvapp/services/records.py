"""Typed records of what the gateway answers, checked on the way in (the network is untrusted).

Only the fields the app shows or sends back are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tvapp.services.errors import MalformedAnswer

# The receipt QR forms the gateway has issued (TVPAYR1 before receipts repeated display_hash).
RECEIPT_QR_PREFIXES = ("TVPAYR1.", "TVPAYR2.")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_CARD = re.compile(r"[0-9]{0,6}\*{4,9}[0-9]{4}")  # as the gateway masks a card


def _get(data: Any, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    if not isinstance(data, dict):
        raise MalformedAnswer("an object was expected")
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedAnswer(f"field {key!r}")
    return value


def _amount(data: dict) -> int:
    amount = _get(data, "amount_fen", int)
    if amount < 0:
        raise MalformedAnswer("negative amount")
    return amount


def _biller_name(data: dict) -> str:
    return _get(_get(data, "biller", dict), "name", str)


def _biller_code(data: dict) -> str:
    return _get(_get(data, "biller", dict), "code", str)


@dataclass(frozen=True, slots=True)
class Household:
    household_no: str
    name_masked: str

    @classmethod
    def from_json(cls, data: Any) -> Household:
        return cls(_get(data, "household_no", str), _get(data, "name_masked", str))


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    utility: str
    biller_name: str
    account_no_masked: str
    amount_due_fen: int
    currency: str
    due_date: str | None
    overdue: bool
    unpaid_bills: int

    @classmethod
    def from_json(cls, data: Any) -> Account:
        return cls(
            account_id=_get(data, "account_id", str),
            utility=_get(data, "utility", str),
            biller_name=_biller_name(data),
            account_no_masked=_get(data, "account_no_masked", str),
            amount_due_fen=_get(data, "amount_due_fen", int),
            currency=_get(data, "currency", str),
            due_date=_get(data, "due_date", str, optional=True),
            overdue=_get(data, "overdue", bool),
            unpaid_bills=_get(data, "unpaid_bills", int),
        )


@dataclass(frozen=True, slots=True)
class Bill:
    bill_id: str
    account_id: str
    utility: str
    biller_code: str  # what the dongle signs as ``biller``
    biller_name: str
    account_no_masked: str  # what screens show, and what the dongle signs as ``account``
    bill_ref: str  # what the dongle signs as ``bill_ref``
    period: str
    amount_fen: int
    currency: str
    due_date: str
    status: str
    overdue: bool

    @classmethod
    def from_json(cls, data: Any) -> Bill:
        status = _get(data, "status", str)
        if status not in ("unpaid", "paid"):
            raise MalformedAnswer("bill status")
        return cls(
            bill_id=_get(data, "bill_id", str),
            account_id=_get(data, "account_id", str),
            utility=_get(data, "utility", str),
            biller_code=_biller_code(data),
            biller_name=_biller_name(data),
            account_no_masked=_get(data, "account_no_masked", str),
            bill_ref=_get(data, "bill_ref", str),
            period=_get(data, "period", str),
            amount_fen=_amount(data),
            currency=_get(data, "currency", str),
            due_date=_get(data, "due_date", str),
            status=status,
            overdue=_get(data, "overdue", bool),
        )


@dataclass(frozen=True, slots=True)
class UsageMonth:
    month: str
    quantity: float
    amount_fen: int

    @classmethod
    def from_json(cls, data: Any) -> UsageMonth:
        return cls(
            _get(data, "month", str), float(_get(data, "quantity", (int, float))), _amount(data)
        )


@dataclass(frozen=True, slots=True)
class Usage:
    unit: str
    months: tuple[UsageMonth, ...]

    @classmethod
    def from_json(cls, data: Any) -> Usage:
        months = _get(data, "months", list)
        return cls(_get(data, "unit", str), tuple(UsageMonth.from_json(m) for m in months))


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_no: str
    payment_id: str
    biller_name: str
    account_no_masked: str
    period: str
    amount_fen: int
    currency: str
    paid_at: str
    qr: str
    # Hex SHA-256 of the confirmation text the dongle signed; "" on receipts from before.
    display_hash: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Receipt:
        qr = _get(data, "qr", str)
        if not qr.startswith(RECEIPT_QR_PREFIXES) or len(qr) > 2000:
            raise MalformedAnswer("receipt QR")
        shown = _get(data, "display_hash", str, optional=True) or ""
        if shown and not _HEX_SHA256.fullmatch(shown):
            raise MalformedAnswer("receipt display_hash")
        return cls(
            receipt_no=_get(data, "receipt_no", str),
            payment_id=_get(data, "payment_id", str),
            biller_name=_biller_name(data),
            account_no_masked=_get(data, "account_no_masked", str),
            period=_get(data, "period", str),
            amount_fen=_amount(data),
            currency=_get(data, "currency", str),
            paid_at=_get(data, "paid_at", str),
            qr=qr,
            display_hash=shown,
        )


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    payment_id: str
    status: str
    biller_name: str
    account_no_masked: str
    period: str
    amount_fen: int
    currency: str
    created_at: str
    receipt: Receipt | None
    # Filled as the money moves (docs/money.md): the utility's reference once it credited the
    # bill, and why the money went back when it was refunded.
    utility_ref: str | None = None
    refund_reason: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> PaymentRecord:
        receipt = _get(data, "receipt", dict, optional=True)
        return cls(
            payment_id=_get(data, "payment_id", str),
            status=_get(data, "status", str),
            biller_name=_biller_name(data),
            account_no_masked=_get(data, "account_no_masked", str),
            period=_get(data, "period", str),
            amount_fen=_amount(data),
            currency=_get(data, "currency", str),
            created_at=_get(data, "created_at", str),
            receipt=Receipt.from_json(receipt) if receipt is not None else None,
            utility_ref=_get(data, "utility_ref", str, optional=True),
            refund_reason=_get(data, "refund_reason", str, optional=True),
        )


@dataclass(frozen=True, slots=True)
class Processing:
    """Authorize's 202: signed and accepted, the bank has not answered yet."""

    payment_id: str

    @classmethod
    def from_json(cls, data: Any) -> Processing:
        if _get(data, "status", str) != "processing":
            raise MalformedAnswer("payment status")
        return cls(_get(data, "payment_id", str))


@dataclass(frozen=True, slots=True)
class FundingSource:
    """A way the household pays: its wallet (with the balance) or a bank card mandate."""

    source_id: str
    kind: str  # wallet | mandate
    is_default: bool
    balance_fen: int | None  # wallets
    currency: str | None  # wallets
    card_masked: str  # mandates: the card as the bank masked it; "" for wallets

    @classmethod
    def from_json(cls, data: Any) -> FundingSource:
        kind = _get(data, "kind", str)
        if kind == "wallet":
            balance = _get(data, "balance_fen", int)
            if balance < 0:
                raise MalformedAnswer("negative wallet balance")
            currency, card = _get(data, "currency", str), ""
        elif kind == "mandate":
            balance, currency = None, None
            card = _get(_get(data, "mandate", dict), "card_masked", str)
            if not _CARD.fullmatch(card):
                raise MalformedAnswer("card number")
        else:
            raise MalformedAnswer("funding source kind")
        return cls(
            _get(data, "id", str), kind, _get(data, "is_default", bool), balance, currency, card
        )


@dataclass(frozen=True, slots=True)
class CreditingAnswer:
    """What the utility said when asked just now (查询到账), and the payment after it."""

    utility_says: str  # credited | not_yet | rejected
    utility_ref: str | None
    reason: str | None
    payment: PaymentRecord

    @classmethod
    def from_json(cls, data: Any) -> CreditingAnswer:
        says = _get(data, "utility_says", str)
        if says not in ("credited", "not_yet", "rejected"):
            raise MalformedAnswer("utility_says")
        return cls(
            says,
            _get(data, "utility_ref", str, optional=True),
            _get(data, "reason", str, optional=True),
            PaymentRecord.from_json(_get(data, "payment", dict)),
        )


SIGN_FIELD_TYPES: dict[str, type] = {
    "gateway_id": str,
    "challenge": str,
    "payment_id": str,
    "biller": str,
    "account": str,
    "bill_ref": str,
    "amount_fen": int,
    "currency": str,
    "timestamp": int,
}


@dataclass(frozen=True, slots=True)
class CreatedPayment:
    payment_id: str
    expires_at: str
    sign_fields: dict[str, Any]  # as the gateway sent them (challenge still base64): journaled

    @classmethod
    def from_json(cls, data: Any) -> CreatedPayment:
        fields = _get(data, "sign_fields", dict)
        if set(fields) != set(SIGN_FIELD_TYPES):
            raise MalformedAnswer("sign_fields")
        for name, kind in SIGN_FIELD_TYPES.items():
            _get(fields, name, kind)
        payment_id = _get(data, "payment_id", str)
        if fields["payment_id"] != payment_id:
            raise MalformedAnswer("sign_fields for another payment")
        return cls(payment_id, _get(data, "expires_at", str), dict(fields))
