"""Prepaid electricity (买电) at the gateway: typed records of its answers, and its calls.

The records are checked on the way in, as the bill records are (tvapp/services/records.py): the
network is untrusted, and a meter, a quote or a purchase the app cannot read is a
``MalformedAnswer``, never a half-filled screen. Money is integer fen with a currency, energy
integer Wh, prices integer milli-fen per kWh (docs/prepaid.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from protocol.card import CardRead
from tvapp.services.errors import MalformedAnswer
from tvapp.services.gateway import Gateway, _list, _segment
from tvapp.services.records import CreatedPayment, _get

METER_KINDS = ("remote", "card", "token")
FULFILMENTS = ("awaiting_payment", "pending", "done", "reversed")
_TOKEN = re.compile(r"[0-9]{20}")
_HEX_APDU = re.compile(r"(?:[0-9a-f]{2}){4,261}")


def _count(data: Any, key: str, *, optional: bool = False) -> int | None:
    """A non-negative integer field (fen, Wh, a count)."""
    value = _get(data, key, int, optional=optional)
    if value is not None and value < 0:
        raise MalformedAnswer(f"negative {key}")
    return value


def _need(value: int | None) -> int:
    assert value is not None  # only for fields read without ``optional``
    return value


@dataclass(frozen=True, slots=True)
class PrepaidRules:
    """The utility's limits on one purchase (docs/prepaid.md "Amounts, rules and tariffs")."""

    multiple_of_fen: int
    min_fen: int
    max_purchase_fen: int
    max_balance_fen: int
    presets_fen: tuple[int, ...]
    fulfil_window_seconds: int

    @classmethod
    def from_json(cls, data: Any) -> PrepaidRules:
        presets = _get(data, "presets_fen", list)
        if not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in presets):
            raise MalformedAnswer("presets_fen")
        rules = cls(
            _need(_count(data, "multiple_of_fen")),
            _need(_count(data, "min_fen")),
            _need(_count(data, "max_purchase_fen")),
            _need(_count(data, "max_balance_fen")),
            tuple(presets),
            _need(_count(data, "fulfil_window_seconds")),
        )
        if rules.multiple_of_fen == 0 or rules.min_fen > rules.max_purchase_fen:
            raise MalformedAnswer("prepaid rules")
        return rules


@dataclass(frozen=True, slots=True)
class MeterBalance:
    amount_fen: int  # may be negative: a meter runs into its emergency credit
    as_of: str
    days_left: int | None
    low: bool

    @classmethod
    def from_json(cls, data: Any) -> MeterBalance:
        return cls(
            _get(data, "amount_fen", int),
            _get(data, "as_of", str),
            _count(data, "days_left", optional=True),
            _get(data, "low", bool),
        )


@dataclass(frozen=True, slots=True)
class Meter:
    meter_id: str
    kind: str  # remote | card | token
    biller_code: str
    biller_name: str
    account_no_masked: str
    meter_no_masked: str
    currency: str
    rules: PrepaidRules
    balance: MeterBalance | None
    pending_purchase_id: str | None

    @classmethod
    def from_json(cls, data: Any) -> Meter:
        kind = _get(data, "kind", str)
        if kind not in METER_KINDS:
            raise MalformedAnswer("meter kind")
        biller = _get(data, "biller", dict)
        balance = _get(data, "balance", dict, optional=True)
        return cls(
            meter_id=_segment(_get(data, "meter_id", str)),
            kind=kind,
            biller_code=_get(biller, "code", str),
            biller_name=_get(biller, "name", str),
            account_no_masked=_get(data, "account_no_masked", str),
            meter_no_masked=_get(data, "meter_no_masked", str),
            currency=_get(data, "currency", str),
            rules=PrepaidRules.from_json(_get(data, "rules", dict)),
            balance=MeterBalance.from_json(balance) if balance is not None else None,
            pending_purchase_id=_get(data, "pending_purchase_id", str, optional=True),
        )


@dataclass(frozen=True, slots=True)
class QuoteTier:
    tier: int
    energy_wh: int
    price_milli_fen_per_kwh: int

    @classmethod
    def from_json(cls, data: Any) -> QuoteTier:
        return cls(
            _need(_count(data, "tier")),
            _need(_count(data, "energy_wh")),
            _need(_count(data, "price_milli_fen_per_kwh")),
        )


@dataclass(frozen=True, slots=True)
class Quote:
    amount_fen: int
    currency: str
    energy_wh: int
    tiers: tuple[QuoteTier, ...]
    year_usage_wh: int

    @classmethod
    def from_json(cls, data: Any) -> Quote:
        quote = cls(
            _need(_count(data, "amount_fen")),
            _get(data, "currency", str),
            _need(_count(data, "energy_wh")),
            tuple(QuoteTier.from_json(t) for t in _get(data, "tiers", list)),
            _need(_count(data, "year_usage_wh")),
        )
        if sum(t.energy_wh for t in quote.tiers) != quote.energy_wh:
            raise MalformedAnswer("quote tiers")  # the tiers must add up to what is promised
        return quote


@dataclass(frozen=True, slots=True)
class Purchase:
    purchase_id: str
    payment_id: str
    meter_id: str
    kind: str
    amount_fen: int
    currency: str
    energy_wh: int
    payment_status: str
    fulfilment: str  # awaiting_payment | pending | done | reversed
    token: str | None  # 20 digits, token meters once paid
    card_count: int | None
    fulfil_by: str | None
    created_at: str

    @classmethod
    def from_json(cls, data: Any) -> Purchase:
        kind, fulfilment = _get(data, "kind", str), _get(data, "fulfilment", str)
        token = _get(data, "token", str, optional=True)
        if kind not in METER_KINDS or fulfilment not in FULFILMENTS:
            raise MalformedAnswer("purchase kind or fulfilment")
        if token is not None and not _TOKEN.fullmatch(token):
            raise MalformedAnswer("token")
        return cls(
            purchase_id=_segment(_get(data, "purchase_id", str)),
            payment_id=_segment(_get(data, "payment_id", str)),
            meter_id=_get(data, "meter_id", str),
            kind=kind,
            amount_fen=_need(_count(data, "amount_fen")),
            currency=_get(data, "currency", str),
            energy_wh=_need(_count(data, "energy_wh")),
            payment_status=_get(data, "payment_status", str),
            fulfilment=fulfilment,
            token=token,
            card_count=_count(data, "card_count", optional=True),
            fulfil_by=_get(data, "fulfil_by", str, optional=True),
            created_at=_get(data, "created_at", str),
        )


@dataclass(frozen=True, slots=True)
class PurchaseBill:
    """The one-off bill the gateway made for a purchase: what the dongle signs names it."""

    bill_ref: str
    biller_code: str
    account_no_masked: str
    period: str
    amount_fen: int
    currency: str

    @classmethod
    def from_json(cls, data: Any) -> PurchaseBill:
        return cls(
            _get(data, "bill_ref", str),
            _get(_get(data, "biller", dict), "code", str),
            _get(data, "account_no_masked", str),
            _get(data, "period", str),
            _need(_count(data, "amount_fen")),
            _get(data, "currency", str),
        )


@dataclass(frozen=True, slots=True)
class CreatedPurchase:
    payment: CreatedPayment
    bill: PurchaseBill
    purchase: Purchase

    @classmethod
    def from_json(cls, data: Any) -> CreatedPurchase:
        created = cls(
            CreatedPayment.from_json(data),
            PurchaseBill.from_json(_get(data, "bill", dict)),
            Purchase.from_json(_get(data, "purchase", dict)),
        )
        if created.purchase.payment_id != created.payment.payment_id:
            raise MalformedAnswer("purchase of another payment")
        return created


@dataclass(frozen=True, slots=True)
class CardSessionAnswer:
    """What the gateway (the utility's vending system) says to do with the card in the slot."""

    action: str  # write | confirm | none
    purchase_id: str | None
    count: int | None
    apdus: tuple[bytes, ...]
    reason: str

    @classmethod
    def from_json(cls, data: Any) -> CardSessionAnswer:
        action = _get(data, "action", str)
        if action == "none":
            return cls("none", None, None, (), _get(data, "reason", str))
        if action not in ("write", "confirm"):
            raise MalformedAnswer("card session action")
        purchase_id = _segment(_get(data, "purchase_id", str))
        if action == "confirm":
            return cls("confirm", purchase_id, None, (), "")
        apdus = _get(data, "apdus", list)
        if not apdus or not all(isinstance(a, str) and _HEX_APDU.fullmatch(a) for a in apdus):
            raise MalformedAnswer("card block")
        return cls(
            "write", purchase_id, _count(data, "count"), tuple(bytes.fromhex(a) for a in apdus), ""
        )


class PrepaidApi:
    """The prepaid calls of the gateway client; each takes the gateway of the device session."""

    @staticmethod
    def meters(gw: Gateway) -> list[Meter]:
        return [Meter.from_json(m) for m in _list(gw._call("GET", "/meters"), "meters")]

    @staticmethod
    def quote(gw: Gateway, meter_id: str, amount_fen: int, currency: str) -> Quote:
        params = {"amount_fen": amount_fen, "currency": currency}
        path = f"/meters/{_segment(meter_id)}/quote"
        quote = Quote.from_json(gw._call("GET", path, params=params))
        if (quote.amount_fen, quote.currency) != (amount_fen, currency):
            raise MalformedAnswer("quote of another amount")
        return quote

    @staticmethod
    def create_purchase(
        gw: Gateway,
        idempotency_key: str,
        meter_id: str,
        amount_fen: int,
        currency: str,
        funding_source: str | None,
        card: CardRead | None,
    ) -> CreatedPurchase:
        body: dict[str, Any] = {
            "meter_id": meter_id,
            "amount_fen": amount_fen,
            "currency": currency,
        }
        if funding_source is not None:
            body["funding_source"] = funding_source
        if card is not None:
            body["card"] = card.to_json()
        data = gw._call(
            "POST", "/purchases", body=body, headers={"Idempotency-Key": idempotency_key}
        )
        return CreatedPurchase.from_json(data)

    @staticmethod
    def purchase(gw: Gateway, purchase_id: str) -> Purchase:
        return Purchase.from_json(gw._call("GET", f"/purchases/{_segment(purchase_id)}"))

    @staticmethod
    def purchases(gw: Gateway, limit: int = 20) -> list[Purchase]:
        data = gw._call("GET", "/purchases", params={"limit": limit})
        return [Purchase.from_json(p) for p in _list(data, "purchases")]

    @staticmethod
    def card_session(gw: Gateway, card: CardRead, challenge: bytes) -> CardSessionAnswer:
        body = {"card": card.to_json(), "challenge": challenge.hex()}
        return CardSessionAnswer.from_json(gw._call("POST", "/cards/session", body=body))

    @staticmethod
    def card_confirm(gw: Gateway, card: CardRead) -> str:
        """The purchase the card now shows as written (``fulfilment`` done)."""
        data = gw._call("POST", "/cards/confirm", body={"card": card.to_json()})
        if _get(data, "fulfilment", str) != "done":
            raise MalformedAnswer("card confirm")
        return _segment(_get(data, "purchase_id", str))
