"""Records exchanged through the daemon API: who holds a dongle, its info, events, signatures.

Each record converts from the wire map the daemon sends (docs/daemon-api.md §5) without
trusting it: a missing or mistyped key becomes a neutral value, never an exception in a
caller's event thread.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class Priority(enum.StrEnum):
    """How urgently a client needs the dongle (docs/daemon-api.md §6).

    HIGH is for a payment the household is confirming right now; NORMAL for everything else
    (the staff tool, diagnostics, the TV app's idle polling).
    """

    NORMAL = "normal"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return 1 if self is Priority.HIGH else 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else b""


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds a dongle: the client's self-chosen name, its process and user, and since when."""

    client: str
    pid: int
    uid: int
    since: float  # Unix time (UTC) the lease was granted
    priority: str

    def describe(self) -> str:
        clock = datetime.fromtimestamp(self.since, UTC).astimezone().strftime("%H:%M:%S")
        return f"{self.client} (pid {self.pid}) since {clock}"

    def to_wire(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "pid": self.pid,
            "uid": self.uid,
            "since_ms": int(self.since * 1000),
            "priority": self.priority,
        }

    @classmethod
    def from_wire(cls, data: Any) -> LeaseHolder | None:
        if not isinstance(data, dict):
            return None
        return cls(
            client=_str(data.get("client"), "?"),
            pid=_int(data.get("pid")),
            uid=_int(data.get("uid")),
            since=_int(data.get("since_ms")) / 1000,
            priority=_str(data.get("priority"), Priority.NORMAL.value),
        )


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    serial: str
    state: str
    firmware: str
    key_rev: int
    counter: int
    pin_set: bool
    pin_retries: int
    puk_retries: int
    certificate: bool
    held_by: LeaseHolder | None
    waiting: int = 0  # clients waiting in ``acquire`` for it

    @classmethod
    def from_wire(cls, data: Any) -> DeviceInfo:
        data = data if isinstance(data, dict) else {}
        return cls(
            serial=_str(data.get("serial")),
            state=_str(data.get("state")),
            firmware=_str(data.get("firmware")),
            key_rev=_int(data.get("key_rev")),
            counter=_int(data.get("counter")),
            pin_set=data.get("pin_set") is True,
            pin_retries=_int(data.get("pin_retries")),
            puk_retries=_int(data.get("puk_retries")),
            certificate=data.get("certificate") is True,
            held_by=LeaseHolder.from_wire(data.get("held_by")),
            waiting=_int(data.get("waiting")),
        )


class EventKind(enum.StrEnum):
    INSERTED = "inserted"
    REMOVED = "removed"
    PIN_BLOCKED = "pin_blocked"
    STATE_CHANGED = "state_changed"
    LEASE_CHANGED = "lease_changed"


@dataclass(frozen=True, slots=True)
class DongleEvent:
    """A status change of one dongle. ``state`` is set for inserted / state_changed /
    pin_blocked, ``holder`` for lease_changed (None when the dongle became free)."""

    kind: str
    serial: str
    state: str | None = None
    holder: LeaseHolder | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> DongleEvent:
        state = data.get("state")
        return cls(
            kind=_str(data.get("event")),
            serial=_str(data.get("serial")),
            state=state if isinstance(state, str) else None,
            holder=LeaseHolder.from_wire(data.get("holder")),
        )


@dataclass(frozen=True, slots=True)
class SignedPayment:
    dongle_id: str
    key_rev: int
    counter: int
    signature: bytes
    replayed: bool

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> SignedPayment:
        return cls(
            dongle_id=_str(data.get("dongle_id")),
            key_rev=_int(data.get("key_rev")),
            counter=_int(data.get("counter")),
            signature=_bytes(data.get("signature")),
            replayed=data.get("replayed") is True,
        )


@dataclass(frozen=True, slots=True)
class SessionSignature:
    dongle_id: str
    key_rev: int
    signature: bytes

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> SessionSignature:
        return cls(
            dongle_id=_str(data.get("dongle_id")),
            key_rev=_int(data.get("key_rev")),
            signature=_bytes(data.get("signature")),
        )
