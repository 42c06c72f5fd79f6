"""Faults a tester injects into the utility (``POST /control/faults``), kept in memory.

``slow``: seconds to wait before handling a notification or a meter query. ``down``: answer 503
until cleared. ``ack_twice``: a utility whose idempotency is broken: a repeated notification of a
payment it already wrote off is written off again under a new reference (a second line on its
statement, a second credit on a prepaid balance) and answered with that reference; the gateway
must keep the first, move no money and flag the contradiction. ``reject``: refuse the next
``count`` new notifications with ``reason``. ``timeout_after_writeoff``: write the bill off,
then hold the answer until the faults are cleared (the gateway's client times out, or its process
dies, without hearing the utility's answer). ``hostile``: answer with ``garbage_json``, a
``huge_body`` or a ``wrong_payment_id`` after writing off.
Clearing the faults releases every held request.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HostileAnswer = Literal["garbage_json", "huge_body", "wrong_payment_id"]


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=1_000_000)
    reason: str = Field(pattern=r"^[a-z_]{1,40}$")


class FaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slow: float | None = Field(default=None, ge=0, le=3600)
    down: bool | None = None
    ack_twice: bool | None = None
    reject: Rejection | None = None
    timeout_after_writeoff: bool | None = None
    hostile: HostileAnswer | None = None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._cleared = threading.Event()
        self.held = 0  # requests waiting in ``slow`` or ``timeout_after_writeoff`` right now

    def update(self, change: FaultSettings) -> None:
        with self._lock:
            merged = self._settings.model_dump() | change.model_dump(exclude_unset=True)
            self._settings = FaultSettings(**merged)

    def clear(self) -> None:
        with self._lock:
            self._settings = FaultSettings()
            # Release everything held so far; later holds wait on a fresh event.
            self._cleared.set()
            self._cleared = threading.Event()

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def take_rejection(self) -> str | None:
        """The injected rejection reason for one new notification, if any are left."""
        with self._lock:
            reject = self._settings.reject
            if reject is None:
                return None
            left = reject.count - 1
            self._settings = self._settings.model_copy(
                update={"reject": Rejection(count=left, reason=reject.reason) if left else None}
            )
            return reject.reason

    def hold(self, seconds: float | None) -> None:
        """Wait ``seconds`` (None: until cleared), or less when the faults are cleared."""
        with self._lock:
            cleared = self._cleared
            self.held += 1
        try:
            cleared.wait(seconds)
        finally:
            with self._lock:
                self.held -= 1

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": self._settings.model_dump(exclude_none=True), "held": self.held}
