"""The confirm screen's text: drawn on screen and, hashed, signed by the dongle.

One function makes both, so the dongle signs exactly what the household read: the title and
each "label: value" line of the confirm screen, in the household's language, as a canonical text
(protocol/display.py: NFC, lines joined by "\\n"). The amount is written by ``format_money``,
which the gateway's amount rule reads back. When the household has ways to pay to choose from,
the one shown ("Pay with: Wallet" / "Bank card ****1234") is a line too, so the signature covers
it; the wallet's balance is not (the text must state exactly one amount).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protocol.display import canonical_text
from tvapp.format import format_money, format_period
from tvapp.services.records import Bill, FundingSource

# Message ids of the confirm screen, in screen order (translated by the caller's gettext).
CONFIRM_LABELS = {
    "title": "Confirm payment",
    "biller": "Biller",
    "account": "Account",
    "period": "Billing period",
    "amount": "Amount",
    "funding": "Pay with",
    "wallet": "Wallet",
    "card": "Bank card {card}",
    "separator": ": ",
}


@dataclass(frozen=True, slots=True)
class ConfirmLine:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    title: str
    biller: ConfirmLine
    account: ConfirmLine
    period: ConfirmLine
    amount: ConfirmLine
    separator: str
    funding: ConfirmLine | None = None  # None: the gateway takes the household's only way

    @property
    def text(self) -> str:
        """The canonical text whose SHA-256 the dongle signs and the gateway checks."""
        lines = (self.biller, self.account, self.period, self.amount)
        if self.funding is not None:
            lines = (*lines, self.funding)
        return canonical_text([self.title, *(f"{x.label}{self.separator}{x.value}" for x in lines)])


def funding_words(source: FundingSource, gettext: Callable[[str], str]) -> str:
    """A way to pay as the household reads it: "Wallet", "Bank card ****1234"."""
    if source.kind == "wallet":
        return gettext(CONFIRM_LABELS["wallet"])
    return gettext(CONFIRM_LABELS["card"]).format(card=source.card_masked)


def confirmation_for(
    bill: Bill, gettext: Callable[[str], str], funding: FundingSource | None = None
) -> Confirmation:
    """What the confirm screen shows for ``bill`` paid from ``funding``, in the language of
    ``gettext``."""

    def line(key: str, value: str) -> ConfirmLine:
        return ConfirmLine(gettext(CONFIRM_LABELS[key]), value)

    return Confirmation(
        title=gettext(CONFIRM_LABELS["title"]),
        biller=line("biller", bill.biller_name),
        account=line("account", bill.account_no_masked),
        period=line("period", format_period(bill.period)),
        amount=line("amount", format_money(bill.amount_fen, bill.currency)),
        separator=gettext(CONFIRM_LABELS["separator"]),
        funding=line("funding", funding_words(funding, gettext)) if funding else None,
    )
