"""The transactional outbox: messages to other systems, written in the same transaction as the
state change that causes them, delivered afterwards by ``tvpay-gateway dispatch``.

A message is claimed with a lease: one dispatcher delivers it at a time, and when that dispatcher
dies the lease runs out and another one takes the message up. Delivery is at least once; every
receiver is idempotent on the message's key (the payment id for ``utility.writeoff``)."""

from gateway.outbox.backoff import MAX_DELAY, backoff
from gateway.outbox.store import Claimed, claim, enqueue, mark_delivered, mark_failed, pending

__all__ = [
    "MAX_DELAY",
    "Claimed",
    "backoff",
    "claim",
    "enqueue",
    "mark_delivered",
    "mark_failed",
    "pending",
]
