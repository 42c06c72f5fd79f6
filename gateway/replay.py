"""The anti-replay window for dongle signature counters (like IPsec's, RFC 4303 §3.4.3).

A box journals each signed authorization and sends it when it can, so authorizations from one
dongle may arrive in any order. Each counter is accepted at most once, and only within the
``REPLAY_WINDOW`` counters ending at the highest one accepted so far: a signature the box saved
while a later payment went through still counts. Accepting an older counter is safe because the
signature also covers the payment id and that payment's single-use challenge, so it can pay
nothing else.

"Used" is the payments table itself: a succeeded payment carries its (dongle, counter), which a
unique constraint keeps to one payment; the dongle row keeps the highest counter. Both change in
the transaction that records the payment, under the dongle's row lock.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.models import Dongle, Payment
from gateway.errors import Conflict

# How far below the highest accepted counter a saved authorization may still arrive. A box pays
# a few bills a month; 64 payments signed while an older one waits is far beyond any real outage.
REPLAY_WINDOW = 64


def accept_counter(session: Session, dongle: Dongle, counter: int) -> None:
    """Spend ``counter`` of ``dongle`` (locked by the caller), or refuse it if used or too old."""
    if counter <= dongle.last_counter - REPLAY_WINDOW:
        raise Conflict(
            f"This authorization was signed before the dongle's last {REPLAY_WINDOW} accepted "
            "payments and can no longer be used; nothing was paid: pay the bill again from the "
            "bill list.",
            code="counter_too_old",
        )
    used = session.scalar(
        select(Payment.id).where(Payment.dongle_id == dongle.dongle_id, Payment.counter == counter)
    )
    if used is not None:
        raise Conflict(
            "The dongle's signature counter was already used by another payment: this "
            "authorization is a replay and was not recorded.",
            code="counter_replayed",
        )
    dongle.last_counter = max(dongle.last_counter, counter)
