"""Taking a mandate payment's money from the bank, which is outside our database transaction.

1. ``authorize`` (gateway.payments) commits the authorization with the payment in ``processing``:
   the debit's intent is durable before the bank hears of it, and the payment id is the bank's
   idempotency key.
2. ``collect`` asks the bank with a short timeout, then ``finish_bank_debit`` applies the answer in
   a second transaction (succeeded with the ledger posting, or failed with the bill payable again).
3. An unknown outcome (timeout, bank down, the gateway killed in between) leaves ``processing``;
   ``resolve_processing`` (``tvpay-gateway bank resolve``, or a dispatcher's loop) asks the bank
   what became of the key and finishes the payment.

The bank takes at most once per key, so any number of these running at once debit once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.bankclient import BankClient, BankRefusedRequest, BankUnreachable, DebitAnswer
from gateway.clock import now
from gateway.db.engine import Database
from gateway.db.models import FundingSource, Mandate, Payment
from gateway.keys import GatewayKeys
from gateway.payments import finish_bank_debit

log = logging.getLogger("tvpay.gateway.bank")


@dataclass(frozen=True, slots=True)
class DebitTerms:
    key: str
    bank_token: str
    amount_fen: int
    currency: str


def _terms(session: Session, payment_id: str) -> DebitTerms | None:
    """What to ask the bank for a payment still processing; None once it no longer is."""
    row = session.execute(
        select(Payment, Mandate)
        .join(FundingSource, Payment.funding_source_id == FundingSource.id)
        .join(Mandate, FundingSource.mandate_id == Mandate.id)
        .where(Payment.id == payment_id, Payment.status == "processing")
    ).first()
    if row is None:
        return None
    payment, mandate = row
    return DebitTerms(payment.id, mandate.bank_token, payment.amount_fen, payment.currency)


@dataclass(frozen=True, slots=True)
class Collector:
    db: Database
    bank: BankClient
    keys: GatewayKeys
    gateway_id: str

    def _finish(self, payment_id: str, answer: DebitAnswer | None) -> dict[str, Any]:
        if answer is not None and answer.outcome == "refused":
            log.info("event=bank_debit_refused payment_id=%s reason=%s", payment_id, answer.reason)
        return self.db.write(
            lambda s: finish_bank_debit(s, self.keys, self.gateway_id, payment_id, answer)
        )

    def collect(self, payment_id: str) -> dict[str, Any]:
        """Ask the bank for a processing payment's debit and record the answer; the payment's
        state afterwards (``processing`` again when the bank's answer is unknown)."""
        terms = self.db.read(lambda s: _terms(s, payment_id))
        if terms is None:  # finished meanwhile, by a resolver or a concurrent request
            return self._finish(payment_id, None)
        try:
            answer = self.bank.debit(terms.key, terms.bank_token, terms.amount_fen, terms.currency)
        except BankUnreachable as exc:
            log.warning("event=bank_debit_unknown payment_id=%s error=%r", payment_id, str(exc))
            return {"payment_id": payment_id, "status": "processing"}
        return self._finish(payment_id, answer)

    def resolve(self, payment_id: str) -> str:
        """Finish one processing payment from what the bank knows; its state afterwards."""
        terms = self.db.read(lambda s: _terms(s, payment_id))
        if terms is None:
            return "finished"
        try:
            answer = self.bank.lookup(terms.key)
            if answer.outcome == "absent":
                # The bank never saw the debit: send it now, under the same key. Should the
                # first request still be on its way, the bank answers both with one debit.
                answer = self.bank.debit(
                    terms.key, terms.bank_token, terms.amount_fen, terms.currency
                )
        except BankUnreachable as exc:
            log.warning("event=bank_resolve_unknown payment_id=%s error=%r", payment_id, str(exc))
            return "processing"
        return str(self._finish(payment_id, answer)["status"])


@dataclass(slots=True)
class ResolveReport:
    outcomes: dict[str, str] = field(default_factory=dict)  # payment id → state afterwards

    def count(self, status: str) -> int:
        return sum(1 for s in self.outcomes.values() if s == status)


def processing_payments(session: Session, older_than: int, at: int) -> list[str]:
    """Mandate payments processing since at least ``older_than`` seconds (by their creation):
    a younger one is most likely still being collected by the request that authorized it."""
    return list(
        session.scalars(
            select(Payment.id)
            .where(Payment.status == "processing", Payment.created_at <= at - older_than)
            .order_by(Payment.created_at, Payment.id)
        )
    )


def resolve_processing(collector: Collector, older_than: int = 60) -> ResolveReport:
    """Finish every processing payment the bank can answer for; the rest stay processing."""
    report = ResolveReport()
    for payment_id in collector.db.read(lambda s: processing_payments(s, older_than, now())):
        report.outcomes[payment_id] = collector.resolve(payment_id)
    return report


def reversal_handler(
    bank: BankClient, delivery_error: type[Exception]
) -> Callable[[Any], Callable[[Session, int], object]]:
    """The outbox handler of topic ``bank.reversal``: give a refunded mandate payment back to the
    card at the bank (the ledger's payable → BANK_CLEARING was posted with the refund). An
    unreachable bank raises ``delivery_error``, so the dispatcher tries again later; the bank
    reverses at most once per key."""

    def handle(message: Any) -> Callable[[Session, int], object]:
        try:
            bank.reverse(message.key)
        except (BankUnreachable, BankRefusedRequest) as exc:
            raise delivery_error(str(exc)) from None
        log.info("event=bank_reversed payment_id=%s", message.key)
        return lambda _session, _now: None

    return handle
