"""The confirm screen's text for a purchase (买电): drawn on screen and, hashed, signed.

The purchase goes through the same confirm screen and PIN as a bill (tvapp/ui/confirmation.py):
its lines are the biller, the meter, the electricity bought and the amount, so the dongle signs
what the household read: "Energy: 178.443 kWh" and "Amount: ¥100.00". Energy is written
with three decimals (exact Wh) and no grouping commas, so the gateway's amount rule
(protocol/display.py: one amount, two decimals) finds exactly one amount in the text: the
money.
"""

from __future__ import annotations

from collections.abc import Callable

from tvapp.format import format_money
from tvapp.services.purchases import PurchaseOrder
from tvapp.services.records import FundingSource
from tvapp.ui.confirmation import CONFIRM_LABELS, Confirmation, ConfirmLine, funding_words

# Message ids of the purchase's confirm screen (the others are the bill's CONFIRM_LABELS).
PURCHASE_LABELS = {
    "title": "Confirm electricity purchase",
    "meter": "Meter",
    "energy": "Energy",
}


def format_energy(energy_wh: int) -> str:
    """``178443`` -> ``"178.443 kWh"``: exact, and never read as an amount of money."""
    return f"{energy_wh // 1000}.{energy_wh % 1000:03d} kWh"


def format_price(milli_fen_per_kwh: int) -> str:
    """``56030`` -> ``"0.5603"`` (yuan per kWh, as tariffs are printed)."""
    ten_thousandths = milli_fen_per_kwh // 10  # 1/10000 yuan = 10 milli-fen
    return f"{ten_thousandths // 10000}.{ten_thousandths % 10000:04d}"


def purchase_confirmation(
    order: PurchaseOrder, gettext: Callable[[str], str], funding: FundingSource | None = None
) -> Confirmation:
    """The confirm screen of ``order`` paid from ``funding``, in the language of ``gettext``.
    The bill's line slots carry the purchase's lines: the meter where a bill has its account,
    the electricity where it has its period."""
    quote, meter = order.quote, order.meter

    def line(label: str, value: str) -> ConfirmLine:
        return ConfirmLine(gettext(label), value)

    return Confirmation(
        title=gettext(PURCHASE_LABELS["title"]),
        biller=line(CONFIRM_LABELS["biller"], meter.biller_name),
        account=line(PURCHASE_LABELS["meter"], meter.meter_no_masked),
        period=line(PURCHASE_LABELS["energy"], format_energy(quote.energy_wh)),
        amount=line(CONFIRM_LABELS["amount"], format_money(quote.amount_fen, quote.currency)),
        separator=gettext(CONFIRM_LABELS["separator"]),
        funding=line(CONFIRM_LABELS["funding"], funding_words(funding, gettext))
        if funding
        else None,
    )
