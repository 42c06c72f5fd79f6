"""The shopkeeper's day: the sales whose money was taken that day (Asia/Shanghai), their totals
and commission, and the float left now."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.clock import iso
from gateway.db.models import Payment, PrepaidMeter, Purchase
from gateway.funding.sources import wallet_currency
from gateway.ledger import accounts, balance
from gateway.masking import mask_account
from gateway.shop.shops import require_shop

# China keeps one offset all year (no summer time): a fixed zone needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TAKEN = ("succeeded", "credited", "refunded")  # the money moved (refunded: and came back)


def day_bounds(day: date) -> tuple[int, int]:
    """[start, end) of ``day`` in Asia/Shanghai, as Unix seconds."""
    start = datetime.combine(day, time(), SHANGHAI)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def day_report(session: Session, shop_id: int, day: date) -> dict[str, Any]:
    """Every sale of ``day`` (reversed ones too, so the shopkeeper sees them); the count and
    totals are of the sales whose money the shop kept."""
    shop = require_shop(session, shop_id)
    start, end = day_bounds(day)
    rows = session.execute(
        select(Purchase, Payment, PrepaidMeter)
        .join(Payment, Purchase.payment_id == Payment.id)
        .join(PrepaidMeter, Purchase.meter_id == PrepaidMeter.id)
        .where(
            Purchase.household_id == shop.id,
            Payment.status.in_(TAKEN),
            Payment.succeeded_at >= start,
            Payment.succeeded_at < end,
        )
        .order_by(Payment.succeeded_at, Payment.id)
    ).all()
    sales = [
        {
            "purchase_id": purchase.id,
            "payment_id": payment.id,
            "account_no_masked": mask_account(payment.account_no),
            "meter_kind": meter.kind,
            "amount_fen": payment.amount_fen,
            "commission_fen": payment.commission_fen or 0,
            "status": purchase.fulfilment,
            "at": iso(payment.succeeded_at),
        }
        for purchase, payment, meter in rows
    ]
    kept = [
        sale
        for sale, (_, payment, _) in zip(sales, rows, strict=True)
        if payment.status != "refunded"
    ]
    wallet = accounts.wallet(shop.household_no)
    return {
        "date": day.isoformat(),
        "sales": sales,
        "count": len(kept),
        "total_fen": sum(sale["amount_fen"] for sale in kept),
        "commission_fen": sum(sale["commission_fen"] for sale in kept),
        "float_fen": balance(session, wallet),
        "currency": wallet_currency(session, wallet),
    }
