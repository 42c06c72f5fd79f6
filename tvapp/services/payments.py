"""One payment from bill to receipt, journaled at every step (DESIGN.md "The payment").

    prepare(bill)        journal intent -> gateway create (idempotency key) -> journal created
                         -> the fields to sign checked against the bill (sign_check)
    pay(prepared, pin, text)
                         fields checked again -> journal signing -> dongle signs the fields and
                         SHA-256 of the confirmation text shown -> journal signed -> gateway
                         authorize (with the text) -> journal succeeded (receipt)
    resubmit()           every signed-but-unconfirmed payment is sent again

A card (bank mandate) payment may be answered 202 ``processing``: the gateway has the signed
authorization and waits for the bank. The journal keeps the entry signed, and resubmission sends
the same authorization again; that is safe (the gateway answers where the payment stands) and is
how the box learns the outcome: the receipt, or the bank's refusal (nothing taken).

A journaled signature is never asked for again: ``pay`` of a signed entry only resubmits, and a
retry after a lost signature reuses the same payment id, which the dongle answers with the same
signature (docs/protocol.md §4.4). One payment operation runs at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import NoReturn

from protocol.display import display_hash, states_amount
from protocol.errors import DongleConflict
from tvapp.journal import Journal, JournalEntry
from tvapp.services.dongle import DongleService
from tvapp.services.errors import GatewayRefused, GatewayUnavailable, ServiceError
from tvapp.services.records import Bill, Processing, Receipt
from tvapp.services.session import DeviceSession
from tvapp.services.sign_check import DetailsMismatch, check_sign_fields

log = logging.getLogger("tvapp.payments")

STEP_PREPARING = "preparing"
STEP_SIGNING = "signing"
STEP_SENDING = "sending"
STEP_CONFIRMING = "confirming"


class PaymentRefused(ServiceError):
    """The gateway refused the payment for good; ``message`` says why, in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PaymentPending(ServiceError):
    """Signed and saved on the box, but the gateway has not confirmed it yet; it is resent."""

    def __init__(self) -> None:
        super().__init__(
            "the payment is signed and saved on this box; it will be sent as soon as the "
            "network is back, nothing more to do"
        )


class PaymentProcessing(ServiceError):
    """Signed and accepted; the bank has not answered yet. Kept journaled and asked again."""

    def __init__(self) -> None:
        super().__init__(
            "the payment is being processed by the bank; the money may take a moment, the "
            "payment history shows when it is done"
        )


@dataclass(frozen=True, slots=True)
class PreparedPayment:
    local_id: str
    payment_id: str
    bill: Bill
    needs_pin: bool  # False when a signature is already journaled: only resubmission remains


def _expired(entry: JournalEntry) -> bool:
    if not entry.expires_at:
        return False
    deadline = datetime.fromisoformat(entry.expires_at.replace("Z", "+00:00"))
    return deadline <= datetime.now(UTC)


def receipt_from_journal(entry: JournalEntry) -> Receipt | None:
    return Receipt(**entry.receipt) if entry.receipt else None


class Payments:
    def __init__(self, session: DeviceSession, dongle: DongleService, journal: Journal) -> None:
        self.session = session
        self.dongle = dongle
        self.journal = journal
        self._lock = threading.Lock()
        # The way to pay each payment was created with (local id -> funding source id), when
        # the household chose one: a payment created for another way is started afresh.
        self._sources: dict[str, str] = {}

    def prepare(self, bill: Bill, funding_source: str | None = None) -> PreparedPayment:
        """``funding_source`` None: the household's default way to pay."""
        with self._lock:
            entry = self.journal.open_for_bill(bill.bill_id)
            if entry is not None and entry.state != "signed":
                stale = _expired(entry) or entry.amount_fen != bill.amount_fen
                other_way = (
                    funding_source is not None
                    and self._sources.get(entry.local_id) != funding_source
                )
                if stale or other_way:
                    # Nothing reached the gateway with a signature: no money moved, start afresh.
                    reason = "expired before it was signed" if stale else "the way to pay changed"
                    self.journal.record_abandoned(entry.local_id, reason)
                    entry = None
            if entry is None:
                entry = self.journal.begin(bill.bill_id, bill.amount_fen, bill.currency)
            if entry.state == "intent":
                entry = self._create(entry, funding_source)
            if entry.state != "signed":
                self._check_fields(entry, bill)
            assert entry.payment_id is not None
            log.info(
                "event=payment_prepared local_id=%s payment_id=%s state=%s",
                entry.local_id,
                entry.payment_id,
                entry.state,
            )
            return PreparedPayment(entry.local_id, entry.payment_id, bill, entry.state != "signed")

    def _create(self, entry: JournalEntry, funding_source: str | None) -> JournalEntry:
        try:
            created = self.session.call(
                lambda gw: gw.create_payment(
                    entry.idempotency_key,
                    entry.bill_id,
                    entry.amount_fen,
                    entry.currency,
                    funding_source,
                )
            )
        except GatewayRefused as exc:
            # Refused before any PIN (e.g. the wallet holds too little): the entry is closed.
            self.journal.record_refused(entry.local_id, exc.message)
            raise PaymentRefused(exc.code, exc.message) from None
        if funding_source is not None:
            self._sources[entry.local_id] = funding_source
        return self.journal.record_created(
            entry.local_id, created.payment_id, created.sign_fields, created.expires_at
        )

    def _check_fields(self, entry: JournalEntry, bill: Bill) -> None:
        """Refuse, unsigned, a payment whose fields to sign are not the bill shown."""
        assert entry.sign_fields is not None and entry.payment_id is not None
        assert entry.expires_at is not None
        try:
            check_sign_fields(
                entry.sign_fields,
                bill,
                entry.payment_id,
                entry.expires_at,
                self.session.gateway.gateway_id,
            )
        except DetailsMismatch as exc:
            self._refuse_mismatch(entry, exc)

    def _refuse_mismatch(self, entry: JournalEntry, exc: DetailsMismatch) -> NoReturn:
        self.journal.record_refused(entry.local_id, str(exc))
        log.warning(
            "event=payment_details_mismatch local_id=%s payment_id=%s bill_id=%s field=%s",
            entry.local_id,
            entry.payment_id,
            entry.bill_id,
            exc.field,
        )
        raise exc

    def pay(
        self,
        prepared: PreparedPayment,
        pin: str,
        display_text: str,
        on_step: Callable[[str], None],
    ) -> Receipt:
        """Sign (unless already signed) and submit; ``display_text`` is the confirm screen's
        canonical text (protocol/display.py), whose SHA-256 the dongle signs."""
        with self._lock:
            entry = self.journal.get(prepared.local_id)
            if entry.state == "succeeded":
                receipt = receipt_from_journal(entry)
                assert receipt is not None
                return receipt
            if entry.state != "signed":
                if _expired(entry):
                    self.journal.record_abandoned(entry.local_id, "expired before it was signed")
                    raise PaymentRefused(
                        "payment_expired",
                        "the payment took too long and expired; nothing was charged, pay again",
                    )
                self._check_fields(entry, prepared.bill)
                if not states_amount(display_text, prepared.bill.amount_fen):
                    self._refuse_mismatch(entry, DetailsMismatch("confirmation text"))
                shown_hash = display_hash(display_text)
                interrupted = entry.state == "signing"
                self.journal.record_signing(entry.local_id)
                on_step(STEP_SIGNING)
                assert entry.sign_fields is not None
                fields = {**entry.sign_fields, "display_hash": shown_hash}
                try:
                    signed = self.dongle.sign_payment(fields, pin)
                except DongleConflict:
                    if not interrupted:
                        raise
                    # The interrupted attempt was signed over another text (the language changed
                    # since): the dongle will not sign this payment id again. Its signature never
                    # reached the journal, so it was never sent: start a new payment.
                    self.journal.record_abandoned(entry.local_id, "signing was interrupted")
                    raise PaymentRefused(
                        "signing_interrupted",
                        "the last attempt to pay this bill was interrupted; nothing was charged, "
                        "pay again",
                    ) from None
                authorization = {**signed, "display_text": display_text}
                entry = self.journal.record_signed(entry.local_id, authorization)
                log.info(
                    "event=payment_signed local_id=%s counter=%s",
                    entry.local_id,
                    authorization["counter"],
                )
            return self._submit(entry, on_step)

    def resubmit(self) -> list[Receipt]:
        """Send every journaled, unconfirmed authorization; stops at the first network failure."""
        receipts = []
        with self._lock:
            for entry in self.journal.unconfirmed():
                try:
                    receipts.append(self._submit(entry, lambda _step: None))
                except PaymentPending:
                    break
                except (PaymentRefused, PaymentProcessing):
                    continue
        return receipts

    def _submit(self, entry: JournalEntry, on_step: Callable[[str], None]) -> Receipt:
        assert entry.payment_id is not None and entry.authorization is not None
        on_step(STEP_SENDING)
        try:
            answer = self.session.gateway.authorize(entry.payment_id, entry.authorization)
        except GatewayUnavailable:
            log.info("event=payment_pending local_id=%s", entry.local_id)
            raise PaymentPending() from None
        except GatewayRefused as exc:
            if exc.code != "payment_already_succeeded":
                self.journal.record_refused(entry.local_id, exc.message)
                log.info("event=payment_refused local_id=%s code=%s", entry.local_id, exc.code)
                raise PaymentRefused(exc.code, exc.message) from None
            answer = self._receipt_of_succeeded(entry)
        if isinstance(answer, Processing):
            # The entry stays signed: resubmission asks again and learns the bank's answer.
            log.info("event=payment_processing local_id=%s", entry.local_id)
            raise PaymentProcessing()
        receipt = answer
        on_step(STEP_CONFIRMING)
        if receipt.payment_id != entry.payment_id or receipt.amount_fen != entry.amount_fen:
            # Keep the signature journaled: a receipt for something else confirms nothing.
            raise PaymentPending()
        self.journal.record_succeeded(entry.local_id, asdict(receipt))
        log.info(
            "event=payment_succeeded local_id=%s receipt=%s", entry.local_id, receipt.receipt_no
        )
        return receipt

    def _receipt_of_succeeded(self, entry: JournalEntry) -> Receipt:
        assert entry.payment_id is not None
        payment_id = entry.payment_id
        try:
            record = self.session.call(lambda gw: gw.payment(payment_id))
        except GatewayUnavailable:
            raise PaymentPending() from None
        if record.receipt is None:
            raise PaymentPending()
        return record.receipt
