"""Buying electricity for the demo household as the TV box does it, without the screens.

``PrepaidBuyer`` runs the TV app's own services (tvapp/services) against a running stack: the
device session opened by the demo dongle through the real daemon, the purchase made at the real
gateway over HTTPS, the confirm text the screen would show, the PIN and signature through the
daemon, then the fulfilment — the write-card block run on the card in the dongle's slot and
confirmed (card meters), or the token fetched (token meters). Its journals live in a directory
of its own, as a second box would have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tvapp.fulfilments import FulfilmentJournal
from tvapp.journal_startup import open_journal
from tvapp.services.card_writer import CardWriter
from tvapp.services.dongle import DongleService
from tvapp.services.gateway import Gateway
from tvapp.services.payments import Payments
from tvapp.services.prepaid import Meter, PrepaidApi, Quote
from tvapp.services.purchases import PurchaseOrder, Purchases
from tvapp.services.session import DeviceSession
from tvapp.ui.purchase_confirmation import purchase_confirmation

CURRENCY = "CNY"


def _english(message: str) -> str:
    return message


def _no_step(_step: str) -> None:
    """The screens show each step; here nobody watches."""


class PrepaidBuyer:
    def __init__(self, where: dict[str, Any], journal_dir: Path) -> None:
        self.pin = str(where["demo"]["pin"])
        self.gateway = Gateway(where["gateway"]["url"], ca_file=where["tls_ca"])
        self.dongle = DongleService(where["daemon"]["socket"])
        self.session = DeviceSession(self.gateway, self.dongle)
        self.journal, _report = open_journal(journal_dir / "journal.sqlite3")
        self.fulfilments = FulfilmentJournal(journal_dir / "fulfilments.sqlite3")
        self.payments = Payments(self.session, self.dongle, self.journal)
        self.purchases = Purchases(self.session, self.journal, self.fulfilments)
        self.writer = CardWriter(self.session, self.dongle.client, self.purchases, self.fulfilments)

    def close(self) -> None:
        self.dongle.close()
        self.gateway.close()
        self.journal.close()
        self.fulfilments.close()

    def quote(self, kind: str, amount_fen: int) -> tuple[Meter, Quote]:
        """The household's meter of ``kind`` and the quote the buy screen shows for the amount."""
        meter = next(m for m in self.session.call(PrepaidApi.meters) if m.kind == kind)
        quote = self.session.call(
            lambda gw: PrepaidApi.quote(gw, meter.meter_id, amount_fen, CURRENCY)
        )
        return meter, quote

    def _pay(self, order: PurchaseOrder) -> str:
        """Create the purchase, sign it with the PIN through the daemon, submit it; its id."""
        prepared = self.purchases.prepare(order)
        text = purchase_confirmation(order, _english).text
        self.payments.pay(prepared, self.pin, text, _no_step)
        made = self.purchases.paid(prepared.payment_id)
        assert made is not None, "the payment of a purchase is the purchase's"
        return made.purchase_id

    def pay_on_card(self, meter: Meter, quote: Quote) -> str:
        """The quoted purchase, from reading the card in the box's slot to the gateway's
        confirmation that the card holds it; its id."""
        purchase_id = self._pay(PurchaseOrder(meter, quote, self.writer.read()))
        written = self.writer.write(_no_step)
        assert written == purchase_id, f"the card took {written}, not {purchase_id}"
        return purchase_id

    def pay_for_token(self, meter: Meter, quote: Quote) -> str:
        """The quoted purchase paid; its 20-digit token, as the TV shows it."""
        return self.purchases.token(self._pay(PurchaseOrder(meter, quote)))

    def buy_on_card(self, amount_fen: int) -> str:
        return self.pay_on_card(*self.quote("card", amount_fen))

    def buy_token(self, amount_fen: int) -> str:
        return self.pay_for_token(*self.quote("token", amount_fen))
