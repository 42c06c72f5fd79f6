"""The dispatcher's loop: claim due messages with a lease, deliver each, record the outcome.

Each worker thread claims a few messages at a time; a message it holds is delivered by no one
else until the lease runs out. The outcome (the utility's answer applied to the payment, and the
message marked delivered) is written in one transaction, so a dispatcher killed at any point
leaves either nothing recorded (the message comes due again after its lease and the utility,
idempotent on the payment id, answers the same) or everything.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.db.engine import Database
from gateway.db.models import Biller, Payment
from gateway.dispatch.clock import Clock
from gateway.dispatch.utility import DeliveryError, notify
from gateway.errors import ServiceUnavailable
from gateway.keys import GatewayKeys
from gateway.outbox import Claimed, claim, mark_delivered, mark_failed
from gateway.prepaid.sweep import sweep
from gateway.writeoff import TOPIC, UtilityAnswer, record_answer, signed_body

log = logging.getLogger("tvpay.gateway.dispatch")


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    lease: int = 60  # seconds a claimed message is this dispatcher's alone
    timeout: float = 10.0  # seconds to wait for the utility's answer; less than the lease
    batch: int = 10  # messages claimed per transaction
    poll: float = 1.0  # seconds between looks at an empty outbox (not in --once)


@dataclass(slots=True)
class Tally:
    delivered: int = 0
    failed: int = 0

    def add(self, other: Tally) -> None:
        self.delivered += other.delivered
        self.failed += other.failed


# A topic's handler delivers one message outside any transaction (raising DeliveryError when it
# should be tried again) and returns what to record in the transaction that marks it delivered.
Handler = Callable[[Claimed], Callable[[Session, int], object]]


class Dispatcher:
    def __init__(
        self,
        db: Database,
        keys: GatewayKeys,
        clock: Clock,
        settings: DispatchSettings,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        """Delivers ``utility.writeoff`` itself, and the other topics of ``handlers``; a topic
        with no handler stays queued for a dispatcher that has one."""
        self.db, self.keys, self.clock, self.settings = db, keys, clock, settings
        self._rng = random.SystemRandom()
        self._prefix = f"{socket.gethostname()}:{os.getpid()}"
        self._handlers: dict[str, Handler] = {TOPIC: self._writeoff, **(handlers or {})}

    def drain(self, worker: str) -> Tally:
        """Deliver every due message once (a failed one waits for its next attempt); return when
        nothing due is left that this worker has not tried."""
        tried: set[int] = set()
        tally = Tally()
        sweep(self.db, self.clock.now())  # 冲正 of overdue card purchases, on every pass
        while True:
            batch = self.db.write(
                lambda s: claim(
                    s,
                    worker,
                    self._handlers,
                    self.clock.now(),
                    self.settings.lease,
                    self.settings.batch,
                    tried,
                )
            )
            if not batch:
                return tally
            for message in batch:
                tried.add(message.id)
                if self._deliver(worker, message):
                    tally.delivered += 1
                else:
                    tally.failed += 1

    def run_once(self, workers: int) -> Tally:
        """Drain with ``workers`` threads; the total of what they did."""
        total, lock = Tally(), threading.Lock()

        def work(name: str, _stop: threading.Event) -> None:
            tally = self.drain(name)
            with lock:
                total.add(tally)

        self._in_threads(workers, work, threading.Event())
        return total

    def run_forever(self, workers: int, stop: threading.Event) -> None:
        def work(name: str, stop: threading.Event) -> None:
            # A drain ends when nothing due is left untried; what failed comes due later.
            while not stop.is_set():
                self.drain(name)
                stop.wait(self.settings.poll)

        self._in_threads(workers, work, stop)

    def _in_threads(
        self, workers: int, work: Callable[[str, threading.Event], None], stop: threading.Event
    ) -> None:
        """Run ``work`` in ``workers`` threads. The first one to fail (the database gone past
        its retries) stops the others, and its error is raised here for the command to report."""
        errors: list[BaseException] = []

        def guarded(name: str) -> None:
            try:
                work(name, stop)
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        threads = [
            threading.Thread(target=guarded, args=(f"{self._prefix}:{n}",), name=f"dispatch-{n}")
            for n in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _deliver(self, worker: str, message: Claimed) -> bool:
        try:
            record = self._handlers[message.topic](message)
            now = self.clock.now()

            def finish(s: Session) -> None:
                record(s, now)
                mark_delivered(s, message.id, worker, now)

            self.db.write(finish)
        except DeliveryError as exc:
            return self._failed(worker, message, f"{type(exc).__name__}: {exc}")
        except ServiceUnavailable:
            raise  # the database is gone: nothing can be recorded, the command reports it
        except Exception as exc:  # a bug must not stop the other messages: log, retry later
            log.exception("event=dispatch_crash topic=%s key=%s", message.topic, message.key)
            return self._failed(worker, message, f"{type(exc).__name__}: {exc}")
        log.info("event=dispatch_delivered topic=%s key=%s", message.topic, message.key)
        return True

    def _failed(self, worker: str, message: Claimed, error: str) -> bool:
        now = self.clock.now()
        due = self.db.write(lambda s: mark_failed(s, message.id, worker, now, error, self._rng))
        log.warning(
            "event=dispatch_failed topic=%s key=%s attempts=%d next_attempt_at=%s error=%r",
            message.topic,
            message.key,
            message.attempts,
            due,
            error,
        )
        return False

    def _writeoff(self, message: Claimed) -> Callable[[Session, int], object]:
        status = self.db.read(lambda s: _payment_status(s, message.key))
        if status != "succeeded":
            # Refunded by staff, or already credited (reconciliation, a crediting check) while
            # the message waited: the utility must not write off money it will not receive.
            log.info("event=writeoff_skipped key=%s status=%s", message.key, status)
            return lambda _s, _now: "unchanged"
        biller_code = str(message.payload.get("biller"))
        url = self.db.read(lambda s: _notify_url(s, biller_code))
        if not url:
            raise DeliveryError(
                f"biller {biller_code} has no notify_url; set it (docs/money.md) and the "
                "write-off goes out at its next attempt"
            )
        body, signature = signed_body(self.keys, message.payload)
        answer: UtilityAnswer = notify(url, message.key, body, signature, self.settings.timeout)
        return lambda s, now: record_answer(s, message.key, answer, now)


def _payment_status(session: Session, payment_id: str) -> str | None:
    payment = session.get(Payment, payment_id)
    return payment.status if payment is not None else None


def _notify_url(session: Session, biller_code: str) -> str | None:
    biller = session.get(Biller, biller_code)
    return biller.notify_url if biller is not None else None
