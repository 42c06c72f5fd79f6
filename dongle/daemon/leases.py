"""Leases: which client holds which dongle, with priority, waiting and stall time-outs.

Rules (docs/daemon-api.md §6):
- A lease belongs to one connection and dies with it (or with the dongle's removal).
- Calls without a lease run when nobody else holds the dongle; otherwise they get "busy" naming
  the holder, never "not found".
- Waiters are served highest priority first, then first come first served.
- A holder that is not running a command loses its lease to another client when it has been
  silent for ``idle_timeout`` (stalled), or when a HIGH client wants a dongle a NORMAL client
  holds. A command in flight is never interrupted by this; its holder learns on its next
  request (``LeaseLost``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dongle.errors import DongleBusy, LeaseLost
from dongle.model import EventKind, LeaseHolder, Priority

Publish = Callable[[dict[str, Any]], None]


class Cancelled(Exception):
    """The waiting client went away; nothing to answer."""


@dataclass(eq=False, slots=True)
class Lease:
    serial: str
    owner: object  # the connection that holds it
    holder: LeaseHolder
    priority: Priority
    last_active: float  # monotonic
    calls: int = 0


@dataclass(frozen=True, slots=True)
class Claimant:
    """Who asks: the connection object and what to tell others about it."""

    owner: object
    client: str
    pid: int
    uid: int
    priority: Priority


class LeaseTable:
    def __init__(
        self,
        idle_timeout: float,
        publish: Publish,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_timeout = idle_timeout
        self._publish = publish
        self._clock = clock
        self._cond = threading.Condition()
        self._leases: dict[str, Lease] = {}
        self._waiting: dict[str, list[tuple[int, int]]] = {}  # serial -> (-rank, ticket)
        self._tickets = itertools.count()
        self._lost: dict[tuple[str, int], str] = {}  # (serial, id(owner)) -> why

    def waiting(self, serial: str) -> int:
        """How many clients wait in ``acquire`` for this dongle."""
        with self._cond:
            return len(self._waiting.get(serial, ()))

    def holder(self, serial: str) -> LeaseHolder | None:
        with self._cond:
            lease = self._leases.get(serial)
            return lease.holder if lease else None

    def acquire(
        self, serial: str, who: Claimant, wait: float, cancelled: threading.Event
    ) -> LeaseHolder:
        """Grant ``who`` the lease on ``serial``, waiting up to ``wait`` seconds.

        Raises DongleBusy naming the holder when the time runs out, Cancelled when
        ``cancelled`` is set (the client hung up) — call ``wake()`` after setting it.
        """
        deadline = self._clock() + wait
        ticket = (-who.priority.rank, next(self._tickets))
        with self._cond:
            self._lost.pop((serial, id(who.owner)), None)
            queue = self._waiting.setdefault(serial, [])
            queue.append(ticket)
            try:
                while True:
                    current = self._leases.get(serial)
                    if current is not None and current.owner is who.owner:
                        current.last_active = self._clock()
                        return current.holder
                    if min(queue) == ticket and self._may_take(current, who.priority):
                        return self._grant(serial, who, current)
                    if cancelled.is_set():
                        raise Cancelled()
                    now = self._clock()
                    if now >= deadline:
                        raise DongleBusy(serial, current.holder if current else None)
                    self._cond.wait(self._next_wakeup(current, deadline, now))
            finally:
                queue.remove(ticket)
                if not queue:
                    del self._waiting[serial]
                self._cond.notify_all()

    def _may_take(self, current: Lease | None, priority: Priority) -> bool:
        if current is None:
            return True
        if current.calls:
            return False
        stalled = self._clock() - current.last_active >= self._idle_timeout
        return stalled or priority.rank > current.priority.rank

    def _next_wakeup(self, current: Lease | None, deadline: float, now: float) -> float:
        wake = deadline
        if current is not None and not current.calls:
            wake = min(wake, current.last_active + self._idle_timeout)
        return max(wake - now, 0.001)

    def _grant(self, serial: str, who: Claimant, current: Lease | None) -> LeaseHolder:
        if current is not None:
            self._revoke(current, who)
        holder = LeaseHolder(who.client, who.pid, who.uid, time.time(), who.priority.value)
        self._leases[serial] = Lease(serial, who.owner, holder, who.priority, self._clock())
        self._announce(serial, holder)
        return holder

    def _revoke(self, lease: Lease, taker: Claimant) -> None:
        idle = self._clock() - lease.last_active
        why = (
            f"idle for {idle:.0f} s"
            if idle >= self._idle_timeout
            else f"a {taker.priority.value}-priority client needed it"
        )
        self._lost[(lease.serial, id(lease.owner))] = (
            f"your lease on dongle {lease.serial} was given to {taker.client} "
            f"(pid {taker.pid}): {why}; acquire it again"
        )
        del self._leases[lease.serial]

    @contextmanager
    def call(self, serial: str, who: Claimant) -> Iterator[None]:
        """Run one command on ``serial`` for ``who``, or raise DongleBusy / LeaseLost."""
        with self._cond:
            why = self._lost.pop((serial, id(who.owner)), None)
            if why is not None:
                raise LeaseLost(why)
            current = self._leases.get(serial)
            if current is not None and current.owner is not who.owner:
                if not self._may_take(current, who.priority):
                    raise DongleBusy(serial, current.holder)
                self._revoke(current, who)
                self._announce(serial, None)
                current = None
            if current is not None:
                current.calls += 1
        try:
            yield
        finally:
            if current is not None:
                with self._cond:
                    current.calls -= 1
                    current.last_active = self._clock()
                    self._cond.notify_all()

    def release(self, serial: str, owner: object) -> bool:
        with self._cond:
            lease = self._leases.get(serial)
            if lease is None or lease.owner is not owner:
                return False
            del self._leases[serial]
            self._announce(serial, None)
            self._cond.notify_all()
            return True

    def release_all(self, owner: object) -> list[str]:
        """Drop every lease of a connection that went away."""
        with self._cond:
            mine = [s for s, lease in self._leases.items() if lease.owner is owner]
            for serial in mine:
                del self._leases[serial]
                self._announce(serial, None)
            for key in [k for k in self._lost if k[1] == id(owner)]:
                del self._lost[key]
            self._cond.notify_all()
            return mine

    def forget(self, serial: str) -> None:
        """The dongle was removed: its lease (if any) ends; waiters keep waiting for its return."""
        with self._cond:
            if self._leases.pop(serial, None) is not None:
                self._announce(serial, None)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _announce(self, serial: str, holder: LeaseHolder | None) -> None:
        self._publish(
            {
                "event": EventKind.LEASE_CHANGED.value,
                "serial": serial,
                "holder": holder.to_wire() if holder else None,
            }
        )
