"""A purchase (买电) from the amount chosen to the credit on the meter, journaled at every step.

    prepare(order)   payment journal intent (its Idempotency-Key) -> POST /purchases -> the
                     purchase recorded in the fulfilment journal -> payment journal created ->
                     the purchase checked against what the buy screen showed (amount, kWh) and
                     the fields to sign against the meter (sign_check)
    (the PIN and the signature are the ordinary payment's: Payments.pay)
    paid(payment)    the fulfilment journal learns the purchase is paid
    token(purchase)  the token, fetched once, recorded before it is shown, never fetched again
    sync()           unfinished purchases brought up to date with the gateway (after a restart,
                     a payment confirmed in the background, or a reversal)

A purchase's payment is journaled under the key ``purchase:<meter id>`` instead of a bill id:
the gateway makes the purchase bill only when asked, and one open payment per key means one
purchase in the making per meter on this box, as the gateway allows one pending per meter.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from protocol.card import CardRead
from tvapp.fulfilments import Fulfilment, FulfilmentJournal
from tvapp.journal import Journal, JournalEntry
from tvapp.services.errors import GatewayRefused, MalformedAnswer
from tvapp.services.payments import PaymentRefused, PreparedPayment, _expired
from tvapp.services.prepaid import Meter, PrepaidApi, Purchase, Quote
from tvapp.services.records import Bill
from tvapp.services.session import DeviceSession
from tvapp.services.sign_check import DetailsMismatch, check_sign_fields

log = logging.getLogger("tvapp.purchases")

KEY_PREFIX = "purchase:"
# Payment states in which the money was taken: the purchase is paid.
PAID = frozenset(("succeeded", "credited", "refunded"))
# Payment states that can never take money any more: the purchase was never paid.
UNPAID_FOR_GOOD = frozenset(("expired", "canceled", "failed"))


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    """What the household chose on the buy screen: the meter, the amount and its quote (the
    kWh shown), and for a card meter the card as read before the purchase is made."""

    meter: Meter
    quote: Quote
    card: CardRead | None = None

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.meter.meter_id

    def bill(self, bill_ref: str = "") -> Bill:
        """The purchase as a bill, for the payment screens and the check of what is signed."""
        return Bill(
            bill_id=self.key,
            account_id="",
            utility="electricity",
            biller_code=self.meter.biller_code,
            biller_name=self.meter.biller_name,
            account_no_masked=self.meter.account_no_masked,
            bill_ref=bill_ref,
            period="",
            amount_fen=self.quote.amount_fen,
            currency=self.quote.currency,
            due_date="",
            status="unpaid",
            overdue=False,
        )


def is_purchase(bill: Bill) -> bool:
    return bill.bill_id.startswith(KEY_PREFIX)


class Purchases:
    def __init__(
        self, session: DeviceSession, journal: Journal, fulfilments: FulfilmentJournal
    ) -> None:
        self.session = session
        self.journal = journal
        self.fulfilments = fulfilments
        self._lock = threading.Lock()
        self._sources: dict[str, str | None] = {}  # local id -> the way to pay it was made with

    def prepare(self, order: PurchaseOrder, funding_source: str | None = None) -> PreparedPayment:
        """The purchase's payment, made at the gateway (or the one already made for the same
        order), checked, ready for the PIN. PaymentRefused for the gateway's refusals before the
        PIN (rules, a pending purchase, a card not ready, the wallet), DetailsMismatch when the
        gateway's purchase is not what the screen showed."""
        with self._lock:
            entry = self.journal.open_for_bill(order.key)
            if entry is not None and entry.state != "signed":
                why = self._changed(entry, order, funding_source)
                if why:
                    # Nothing reached the gateway with a signature: no money moved, start afresh.
                    self.journal.record_abandoned(entry.local_id, why)
                    self._drop(entry, why)
                    entry = None
            if entry is None:
                entry = self.journal.begin(order.key, order.quote.amount_fen, order.quote.currency)
            if entry.state == "intent":
                entry = self._create(entry, order, funding_source)
            assert entry.payment_id is not None and entry.sign_fields is not None
            bill = order.bill(entry.sign_fields.get("bill_ref", ""))
            if entry.state != "signed":
                self._check(entry, order, bill)
            return PreparedPayment(entry.local_id, entry.payment_id, bill, entry.state != "signed")

    def _changed(
        self, entry: JournalEntry, order: PurchaseOrder, funding_source: str | None
    ) -> str:
        """Why the purchase in the making is not this order ("" when it is)."""
        made = self.fulfilments.by_payment(entry.payment_id) if entry.payment_id else None
        if _expired(entry):
            return "expired before it was signed"
        if entry.amount_fen != order.quote.amount_fen or (
            made is not None and made.energy_wh != order.quote.energy_wh
        ):
            return "the purchase changed"
        if entry.local_id in self._sources and self._sources[entry.local_id] != funding_source:
            return "the way to pay changed"
        return ""

    def _drop(self, entry: JournalEntry, why: str) -> None:
        made = self.fulfilments.by_payment(entry.payment_id) if entry.payment_id else None
        if made is not None and made.state == "created":
            self.fulfilments.record_dropped(made.purchase_id, why)

    def _create(
        self, entry: JournalEntry, order: PurchaseOrder, funding_source: str | None
    ) -> JournalEntry:
        meter = order.meter
        try:
            created = self.session.call(
                lambda gw: PrepaidApi.create_purchase(
                    gw,
                    entry.idempotency_key,
                    meter.meter_id,
                    entry.amount_fen,
                    entry.currency,
                    funding_source,
                    order.card,
                )
            )
        except GatewayRefused as exc:
            # Refused before any PIN (rules, a pending purchase, the card, the wallet).
            self.journal.record_refused(entry.local_id, exc.message)
            raise PaymentRefused(exc.code, exc.message) from None
        purchase = created.purchase
        self._sources[entry.local_id] = funding_source
        self.fulfilments.record_created(
            purchase.purchase_id,
            purchase.payment_id,
            meter.meter_id,
            meter.kind,
            purchase.amount_fen,
            purchase.currency,
            purchase.energy_wh,
        )
        sign_fields = {**created.payment.sign_fields}
        log.info(
            "event=purchase_created purchase_id=%s payment_id=%s meter=%s",
            purchase.purchase_id,
            purchase.payment_id,
            meter.meter_id,
        )
        entry = self.journal.record_created(
            entry.local_id, created.payment.payment_id, sign_fields, created.payment.expires_at
        )
        if created.bill.bill_ref != sign_fields.get("bill_ref") or purchase.meter_id != (
            meter.meter_id
        ):
            self._refuse(entry, DetailsMismatch("bill_ref"))
        return entry

    def _check(self, entry: JournalEntry, order: PurchaseOrder, bill: Bill) -> None:
        """Refuse, unsigned, a purchase that is not what the buy screen showed: the amount, the
        kWh, the meter's biller and account, and the purchase's own bill."""
        assert entry.payment_id is not None and entry.sign_fields is not None
        assert entry.expires_at is not None
        made = self.fulfilments.by_payment(entry.payment_id)
        try:
            if made is None or made.meter_id != order.meter.meter_id:
                raise DetailsMismatch("purchase")
            if made.energy_wh != order.quote.energy_wh:
                raise DetailsMismatch("energy_wh")
            if made.amount_fen != order.quote.amount_fen:
                raise DetailsMismatch("amount_fen")
            if not bill.bill_ref:
                raise DetailsMismatch("bill_ref")
            check_sign_fields(
                entry.sign_fields,
                bill,
                entry.payment_id,
                entry.expires_at,
                self.session.gateway.gateway_id,
            )
        except DetailsMismatch as exc:
            self._refuse(entry, exc)

    def _refuse(self, entry: JournalEntry, exc: DetailsMismatch) -> None:
        self.journal.record_refused(entry.local_id, str(exc))
        made = self.fulfilments.by_payment(entry.payment_id) if entry.payment_id else None
        if made is not None and made.state == "created":
            self.fulfilments.record_dropped(made.purchase_id, str(exc))
        log.warning(
            "event=purchase_details_mismatch local_id=%s payment_id=%s field=%s",
            entry.local_id,
            entry.payment_id,
            exc.field,
        )
        raise exc

    # -- after the payment ---------------------------------------------------------------

    def paid(self, payment_id: str) -> Fulfilment | None:
        """The purchase of ``payment_id`` is paid (None: the payment was no purchase)."""
        made = self.fulfilments.by_payment(payment_id)
        if made is None:
            return None
        if made.state == "created":
            made = self.fulfilments.record_paid(made.purchase_id)
        if made.kind == "remote" and made.state == "paid":
            # Nothing for the box to do: the utility credits the account when told.
            made = self.fulfilments.record_done(made.purchase_id, "credited by the utility")
        return made

    def token(self, purchase_id: str) -> str:
        """The purchase's token: the recorded one, or fetched once and recorded first."""
        made = self.fulfilments.get(purchase_id)
        if made is not None and made.token is not None:
            return made.token
        purchase = self.session.call(lambda gw: PrepaidApi.purchase(gw, purchase_id))
        if purchase.token is None:
            raise MalformedAnswer("a paid token purchase without its token")
        self._remember(purchase)
        self.fulfilments.record_token(purchase_id, purchase.token)
        return purchase.token

    def sync(self) -> list[Fulfilment]:
        """Each unfinished purchase as the gateway sees it now; the ones still unfinished."""
        for made in self.fulfilments.unfinished():
            purchase = self.session.call(
                lambda gw, purchase_id=made.purchase_id: PrepaidApi.purchase(gw, purchase_id)
            )
            self._follow(made, purchase)
        return self.fulfilments.unfinished()

    def _remember(self, purchase: Purchase) -> Fulfilment:
        """A purchase this box has no record of (made on another box, or before its journal was
        lost): recorded, so that what is done here is journaled like any other."""
        made = self.fulfilments.get(purchase.purchase_id)
        if made is None:
            made = self.fulfilments.record_created(
                purchase.purchase_id,
                purchase.payment_id,
                purchase.meter_id,
                purchase.kind,
                purchase.amount_fen,
                purchase.currency,
                purchase.energy_wh,
            )
        if made.state == "created" and purchase.payment_status in PAID:
            made = self.fulfilments.record_paid(purchase.purchase_id)
        return made

    def remember(self, purchase_id: str) -> Fulfilment:
        """The purchase ``purchase_id`` as recorded here, fetched from the gateway if unknown."""
        made = self.fulfilments.get(purchase_id)
        if made is not None and made.state != "created":
            return made
        return self._remember(self.session.call(lambda gw: PrepaidApi.purchase(gw, purchase_id)))

    def _follow(self, made: Fulfilment, purchase: Purchase) -> None:
        if made.state == "created":
            if purchase.payment_status in UNPAID_FOR_GOOD or purchase.fulfilment == "reversed":
                self.fulfilments.record_dropped(made.purchase_id, purchase.payment_status)
                return
            if purchase.payment_status not in PAID:
                return
            made = self.fulfilments.record_paid(made.purchase_id)
        if purchase.fulfilment == "reversed":
            self.fulfilments.record_reversed(made.purchase_id)
        elif purchase.fulfilment == "done" and made.kind == "token" and purchase.token:
            self.fulfilments.record_token(made.purchase_id, purchase.token)
        elif purchase.fulfilment == "done" or made.kind == "remote":
            self.fulfilments.record_done(made.purchase_id, "the gateway says done")
