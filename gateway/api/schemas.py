"""Request and response schemas of the API; they are also what /openapi.json publishes.

Requests are strict: unknown fields, wrong JSON types and out-of-range values are refused before
any handler runs. Byte strings travel as padded base64 and are decoded with ``decode_b64``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.errors import Unprocessable
from protocol.display import MAX_DISPLAY_TEXT

DongleId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
HouseholdNo = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,32}$")]
AccountNo = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,32}$")]
# Our ids: a 2-4 letter kind (fs_, pay_, bill_…) and 128 random bits in hex.
ObjectId = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,4}_[0-9a-f]{32}$")]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Address = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
B64 = Annotated[
    str,
    StringConstraints(
        max_length=5464,
        pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
    ),
]
# Fixed sizes spelled out so clients (and fuzzers) know the exact shapes.
Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$")]  # 64 bytes
Challenge32 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}=$")]  # 32 bytes
PublicKey = Annotated[str, StringConstraints(pattern=r"^(?:[A-Za-z0-9+/]{87}=)?$")]  # 65 or 0
Uint32 = Annotated[int, Field(ge=0, le=0xFFFFFFFF)]
UnixTime = Annotated[int, Field(ge=0, le=2**62)]
AmountFen = Annotated[int, Field(ge=1, le=10**12)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
BindCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Utility = Literal["electricity", "water", "gas", "phone", "tv"]
IsoTime = str
# The confirm screen's text (protocol/display.py): NFC, lines joined by "\n", checked by the handler.
DisplayText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_DISPLAY_TEXT)]


def decode_b64(value: str, name: str, lo: int, hi: int) -> bytes:
    """Standard padded base64 → bytes of length lo..hi, or 422 naming the field."""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Unprocessable(f"{name} must be standard padded base64.") from None
    if not lo <= len(data) <= hi:
        raise Unprocessable(f"{name} must decode to {lo}..{hi} bytes, not {len(data)}.")
    return data


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---- requests ------------------------------------------------------------------------------


class ChallengeRequest(Strict):
    dongle_id: DongleId


class SessionRequest(Strict):
    dongle_id: DongleId
    key_rev: Uint32
    challenge: Challenge32
    timestamp: UnixTime
    signature: Signature


class BindRequest(Strict):
    """Exactly one proof of holding the account: the holder's name or the bill's bind code."""

    utility: Utility
    account_no: AccountNo
    holder_name: Name | None = None
    bind_code: BindCode | None = None


class CreatePaymentRequest(Strict):
    bill_id: ObjectId
    amount_fen: AmountFen
    currency: Currency
    funding_source: ObjectId | None = None  # default: the household's default source


class AuthorizeRequest(Strict):
    dongle_id: DongleId
    key_rev: Uint32
    counter: Uint32
    signature: Signature
    display_text: DisplayText


class HouseholdCreateRequest(Strict):
    household_no: HouseholdNo
    name: Name
    address: Address


class AttestationIn(Strict):
    dongle_id: DongleId
    key_rev: Uint32
    public_key: PublicKey
    nonce: Challenge32
    signature: Signature
    certificates: Annotated[list[B64], Field(min_length=1, max_length=4)]


class AttestationRequest(Strict):
    attestation: AttestationIn


class RegisterRequest(Strict):
    household_no: HouseholdNo
    attestation: AttestationIn
    role: Literal["home", "shop"] = "home"  # must be the household's kind (a shop's dongle)


class ActivateRequest(Strict):
    key_rev: Uint32
    challenge: Challenge32
    timestamp: UnixTime
    signature: Signature


class RevokeRequest(Strict):
    reason: Name


class RebindRequest(Strict):
    household_no: HouseholdNo


# ---- responses -----------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    database: str


class GatewayInfo(BaseModel):
    gateway_id: str
    receipt_public_key_pem: str
    receipt_key_id: str
    operator_ca_pem: str
    currencies: list[str]
    api_version: int


class BillerOut(BaseModel):
    code: str
    name: str


class ReceiptOut(BaseModel):
    receipt_no: str
    payment_id: str
    gateway_id: str
    household_no: str
    biller: BillerOut
    account_no_masked: str
    bill_ref: str
    period: str
    amount_fen: int
    currency: str
    paid_at: IsoTime
    paid_at_unix: int
    dongle_id: str
    counter: int
    # Hex SHA-256 of the confirmation text the dongle signed; null on receipts issued before
    # payments signed one.
    display_hash: str | None = None
    receipt_key_id: str
    signature: str
    qr: str


class PublicReceipt(BaseModel):
    receipt: ReceiptOut
    receipt_public_key_pem: str
    valid: bool


class ChallengeOut(BaseModel):
    challenge: str
    gateway_id: str
    timestamp: int
    expires_at: IsoTime


class HouseholdBrief(BaseModel):
    household_no: str
    name_masked: str


class SessionOut(BaseModel):
    token: str
    expires_at: IsoTime
    household: HouseholdBrief
    # The dongle's registered payment key (SEC1 uncompressed, base64) and its revision: the app
    # checks the dongle's key agreement against it before it encrypts a PIN (protocol.md §6.1).
    dongle_public_key: str
    key_rev: int


class HouseholdOut(BaseModel):
    household_no: str
    name_masked: str
    address_masked: str
    dongle_id: str


class AccountOut(BaseModel):
    account_id: str
    utility: str
    biller: BillerOut
    account_no_masked: str
    holder_name_masked: str
    address_masked: str
    amount_due_fen: int
    currency: str
    due_date: str | None
    overdue: bool
    unpaid_bills: int
    closed: bool  # the utility closed it (销户): its bills are refused before the PIN
    bound_at: IsoTime | None


class AccountList(BaseModel):
    accounts: list[AccountOut]


class BillOut(BaseModel):
    bill_id: str
    account_id: str
    utility: str
    biller: BillerOut
    account_no_masked: str
    bill_ref: str
    period: str
    amount_fen: int
    currency: str
    due_date: str
    status: Literal["unpaid", "paid"]
    overdue: bool
    issued_at: IsoTime
    paid_at: IsoTime | None
    payment_id: str | None


class BillList(BaseModel):
    bills: list[BillOut]


class UsageMonth(BaseModel):
    month: str
    quantity: float
    amount_fen: int
    currency: str


class UsageOut(BaseModel):
    account_id: str
    utility: str
    unit: str
    months: list[UsageMonth]


PaymentState = Literal[
    "requires_authorization",
    "processing",
    "succeeded",
    "credited",
    "refunded",
    "failed",
    "expired",
    "canceled",
]


class PaymentOut(BaseModel):
    payment_id: str
    status: PaymentState
    bill_id: str
    account_id: str
    biller: BillerOut
    account_no_masked: str
    period: str
    amount_fen: int
    currency: str
    created_at: IsoTime
    expires_at: IsoTime
    succeeded_at: IsoTime | None
    utility_ref: str | None = None
    credited_at: IsoTime | None = None
    refunded_at: IsoTime | None = None
    refund_reason: str | None = None
    dongle_id: str | None
    receipt: ReceiptOut | None


class PaymentList(BaseModel):
    payments: list[PaymentOut]


class Display(BaseModel):
    biller_name: str
    account_no_masked: str
    period: str
    amount_fen: int
    currency: str


class SignFields(BaseModel):
    gateway_id: str
    challenge: str
    payment_id: str
    biller: str
    account: str
    bill_ref: str
    amount_fen: int
    currency: str
    timestamp: int


class CreatedPayment(BaseModel):
    payment_id: str
    status: Literal["requires_authorization"]
    expires_at: IsoTime
    bill: BillOut
    display: Display
    sign_fields: SignFields


class AuthorizedPayment(BaseModel):
    payment_id: str
    status: Literal["succeeded"]
    receipt: ReceiptOut


class ProcessingPayment(BaseModel):
    """202: the bank has not answered yet; GET the payment later (docs/money.md)."""

    payment_id: str
    status: Literal["processing"]


class NonceOut(BaseModel):
    nonce: str
    expires_at: IsoTime


class AttestationResult(BaseModel):
    dongle_id: str
    key_rev: int
    genuine: bool
    has_key: bool


class DongleOut(BaseModel):
    dongle_id: str
    key_rev: int
    status: Literal["pending", "active", "revoked"]
    household_no: str
    public_key: str
    certificate: str
    last_counter: int
    registered_at: IsoTime
    activated_at: IsoTime | None
    revoked_at: IsoTime | None
    revoke_reason: str | None


class DongleList(BaseModel):
    dongles: list[DongleOut]


class StaffHouseholdOut(BaseModel):
    household_no: str
    name: str
    address: str
    created_at: IsoTime
    dongles: list[DongleOut]


class AuditEntryOut(BaseModel):
    id: int
    at: IsoTime
    actor: str
    action: str
    target: str
    details: dict[str, object]


class AuditList(BaseModel):
    entries: list[AuditEntryOut]


# Wallets, funding sources, staff credits and refunds (docs/money.md).
# Staff references: the shop receipt or bank transfer number.
Reference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,64}$")]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class MandateBrief(BaseModel):
    card_masked: str
    per_payment_limit_fen: int
    monthly_limit_fen: int
    currency: str
    status: str


class FundingSourceOut(BaseModel):
    id: str
    kind: Literal["wallet", "mandate"]
    is_default: bool
    balance_fen: int | None = None  # wallets
    currency: str | None = None  # wallets
    mandate: MandateBrief | None = None  # mandates


class FundingSourceList(BaseModel):
    funding_sources: list[FundingSourceOut]


class DefaultSourceRequest(Strict):
    funding_source: ObjectId


class WalletCreditRequest(Strict):
    amount_fen: AmountFen
    currency: Currency
    reference: Reference
    channel: Literal["shop", "bank_transfer"]


class WalletCreditOut(BaseModel):
    household_no: str
    amount_fen: int
    currency: str
    reference: str
    channel: str
    txn_id: str
    balance_fen: int
    replayed: bool


class RefundRequest(Strict):
    reason: Reason


class FundingSourceBrief(BaseModel):
    id: str
    kind: str


class RefundOut(BaseModel):
    payment_id: str
    status: str
    amount_fen: int
    currency: str
    funding_source: FundingSourceBrief
    reason: str


# Bank mandates (docs/money.md, "Bank mandates").
BankToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CardMasked = Annotated[str, StringConstraints(pattern=r"^[0-9]{0,6}\*{4,9}[0-9]{4}$")]
LimitFen = Annotated[int, Field(ge=1, le=10_000_000)]


class MandateBindRequest(Strict):
    bank_token: BankToken
    card_masked: CardMasked
    per_payment_limit_fen: LimitFen
    monthly_limit_fen: LimitFen
    currency: Literal["CNY"] = "CNY"


class MandateRevokeRequest(Strict):
    reason: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    ]


class MandateOut(BaseModel):
    mandate_id: str
    funding_source_id: str
    card_masked: str
    per_payment_limit_fen: int
    monthly_limit_fen: int
    spent_this_month_fen: int
    currency: str
    status: Literal["active", "revoked"]
    created_at: IsoTime


class MandateList(BaseModel):
    mandates: list[MandateOut]


class CreditingCheckOut(BaseModel):
    """What the utility said when asked just now (查询到账), and the payment after it."""

    payment_id: str
    utility_says: Literal["credited", "not_yet", "rejected"]
    utility_ref: str | None
    reason: str | None
    payment: PaymentOut


class ReconciliationFinding(BaseModel):
    kind: Literal["credited", "missing_there", "missing_here", "mismatch", "duplicate"]
    key: str
    line: int | None
    detail: str


class ReconciliationSummary(BaseModel):
    """One reconciled file; ``counts`` has every kind, ``findings`` at most 1000 per kind."""

    id: str
    source: Literal["utility", "bank"]
    scope: str
    day: str
    file_name: str
    file_sha256: str
    lines: int
    counts: dict[str, int]
    resolved: int
    created_at: int
    created_by: str


class ReconciliationOut(ReconciliationSummary):
    findings: list[ReconciliationFinding]


class ReconciliationList(BaseModel):
    reconciliations: list[ReconciliationSummary]
