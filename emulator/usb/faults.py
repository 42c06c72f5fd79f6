"""Seeded, scriptable faults on the virtual cable: what goes wrong with real USB, on request.

A fault applies to the next transfers in one direction ("in": dongle → host, "out": host →
dongle), each time with ``probability``, ``count`` times (0 = until cleared). Kinds:

- ``drop``: the transfer is lost.
- ``corrupt``: one byte of the transfer is flipped.
- ``duplicate``: the transfer arrives twice.
- ``delay``: the transfer is held for ``seconds``: "in", the answer waits before the host can
  read it; "out", the dongle receives the host's write that much later (the write itself
  completes, as the host controller has buffered it; transfers after it queue behind it).
- ``stall``: the endpoint halts; transfers fail with a pipe error until the host clears the halt.
- ``unplug``: the dongle is unplugged in the middle of the transfer ("in": after executing the
  command, so its answer is lost; "out": before the request was complete).
- ``power_cut``: the power goes during the dongle's next state write, after ``at_byte`` bytes
  (random when not given); with ``exit_process`` the whole emulator process dies there
  (a real kill, for the virtual cable), otherwise the dongle drops off the bus and comes back
  on the next plug with whatever the store holds.
"""

from __future__ import annotations

import enum
import random
from dataclasses import asdict, dataclass
from typing import Any


class FaultKind(enum.StrEnum):
    DROP = "drop"
    CORRUPT = "corrupt"
    DUPLICATE = "duplicate"
    DELAY = "delay"
    STALL = "stall"
    UNPLUG = "unplug"
    POWER_CUT = "power_cut"


class FaultError(ValueError):
    """A fault description is not valid; the message says which part."""


@dataclass(slots=True)
class Fault:
    kind: FaultKind
    direction: str = "in"
    probability: float = 1.0
    count: int = 1
    seconds: float = 0.0
    at_byte: int | None = None
    exit_process: bool = False

    @classmethod
    def parse(cls, kind: str, params: dict[str, Any]) -> Fault:
        try:
            fault = cls(FaultKind(kind), **params)
        except ValueError:
            raise FaultError(
                f"unknown fault kind {kind!r}; use one of {', '.join(k.value for k in FaultKind)}"
            ) from None
        except TypeError as exc:
            raise FaultError(f"bad fault parameters: {exc}") from None
        if fault.direction not in ("in", "out"):
            raise FaultError("direction must be 'in' or 'out'")
        if not 0.0 <= fault.probability <= 1.0:
            raise FaultError("probability must be within 0..1")
        if fault.count < 0 or not 0.0 <= fault.seconds <= 60.0:
            raise FaultError("count must be >= 0 and seconds within 0..60")
        return fault

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}


class FaultPlan:
    """The active faults of one dongle and the seeded random source that decides them."""

    def __init__(self, seed: int | str = 0) -> None:
        self.rng = random.Random(seed)
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def active(self) -> list[Fault]:
        return list(self._faults)

    def take(self, kind: FaultKind, direction: str | None = None) -> Fault | None:
        """The fault of ``kind`` that fires on this transfer, if any (and uses one of its count)."""
        for fault in self._faults:
            if fault.kind is not kind or (direction is not None and fault.direction != direction):
                continue
            if self.rng.random() >= fault.probability:
                return None
            if fault.count:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
            return fault
        return None

    def corrupt(self, data: bytes) -> bytes:
        if not data:
            return data
        spoiled = bytearray(data)
        spoiled[self.rng.randrange(len(spoiled))] ^= 1 << self.rng.randrange(8)
        return bytes(spoiled)
