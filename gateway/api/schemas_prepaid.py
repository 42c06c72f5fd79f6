"""Schemas of the prepaid electricity API (docs/gateway.md §1.9): meters, quotes, purchases."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from gateway.api.schemas import (
    AmountFen,
    BillerOut,
    CreatedPayment,
    Currency,
    IsoTime,
    ObjectId,
    PaymentState,
    Strict,
)
from gateway.api.schemas_cards import CardIn

MeterKind = Literal["remote", "card", "token"]


class CreatePurchaseRequest(Strict):
    meter_id: ObjectId
    amount_fen: AmountFen
    currency: Currency
    funding_source: ObjectId | None = None  # default: the household's default source
    card: CardIn | None = None  # card meters: the purchase card as the box read it


class RulesOut(BaseModel):
    multiple_of_fen: int
    min_fen: int
    max_purchase_fen: int
    max_balance_fen: int
    presets_fen: list[int]
    fulfil_window_seconds: int


class BalanceOut(BaseModel):
    amount_fen: int
    as_of: IsoTime | None
    days_left: int | None  # balance ÷ mean daily spend of the last 30 days; null: unknown
    low: bool  # days_left <= 7 or amount below ¥20.00


class MeterOut(BaseModel):
    meter_id: str
    kind: MeterKind
    biller: BillerOut
    account_no_masked: str
    meter_no_masked: str
    currency: str
    rules: RulesOut
    balance: BalanceOut | None
    pending_purchase_id: str | None


class MeterList(BaseModel):
    meters: list[MeterOut]


class TierOut(BaseModel):
    tier: int
    energy_wh: int
    price_milli_fen_per_kwh: int


class QuoteOut(BaseModel):
    amount_fen: int
    currency: str
    energy_wh: int
    tiers: list[TierOut]
    year_usage_wh: int


class PurchaseOut(BaseModel):
    purchase_id: str
    payment_id: str
    meter_id: str
    kind: MeterKind
    amount_fen: int
    currency: str
    energy_wh: int
    tiers: list[TierOut]  # the quote the household agreed to
    payment_status: PaymentState
    fulfilment: Literal["awaiting_payment", "pending", "done", "reversed", "void"]
    token: str | None  # 20 digits, token meters once paid
    card_count: int | None  # card meters: the purchase count this purchase writes
    fulfil_by: IsoTime | None
    created_at: IsoTime


class PurchaseList(BaseModel):
    purchases: list[PurchaseOut]


class CreatedPurchase(CreatedPayment):
    purchase: PurchaseOut
