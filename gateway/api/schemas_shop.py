"""Schemas of the shop API (docs/gateway.md §1.10): a shop's sale, its day, and staff's shops."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from gateway.api.schemas import (
    AccountNo,
    Address,
    AmountFen,
    Currency,
    HouseholdNo,
    IsoTime,
    Name,
    Strict,
)
from gateway.api.schemas_cards import CardIn
from gateway.api.schemas_prepaid import CreatedPurchase, MeterKind
from gateway.shop.shops import MAX_COMMISSION_BP

BillerCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class SaleRequest(Strict):
    """The customer by 户号 at a biller, or by the purchase card the shop's box read."""

    account_no: AccountNo | None = None
    biller: BillerCode | None = None
    card: CardIn | None = None
    amount_fen: AmountFen
    currency: Currency


class CreatedSale(CreatedPurchase):
    """The same answer as POST /purchases: the shop's dongle signs ``sign_fields``."""


class SaleOut(BaseModel):
    purchase_id: str
    payment_id: str
    account_no_masked: str
    meter_kind: MeterKind
    amount_fen: int
    commission_fen: int
    status: Literal["awaiting_payment", "pending", "done", "reversed", "void"]
    at: IsoTime


class ShopReport(BaseModel):
    date: str
    sales: list[SaleOut]
    count: int  # sales whose money the shop kept (reversed ones are listed, not counted)
    total_fen: int
    commission_fen: int
    float_fen: int  # now
    currency: str


class ShopCreateRequest(Strict):
    shop_no: HouseholdNo
    name: Name
    address: Address
    commission_bp: Annotated[int, Field(ge=0, le=MAX_COMMISSION_BP)]


class ShopOut(BaseModel):
    shop_no: str
    name: str
    address: str
    commission_bp: int
    float_fen: int
    commission_earned_fen: int
    currency: str


class ShopList(BaseModel):
    shops: list[ShopOut]
