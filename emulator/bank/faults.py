"""The bank's fault controls: slow answers, down, and a debit whose answer never comes in time.

Faults live in the process, not the database: a restarted bank is a healthy bank.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from emulator.bank.errors import BankDown

# How long a debit under ``timeout_after_debit`` holds its answer when nobody clears the fault:
# far longer than any client's timeout, short enough that a forgotten fault frees its thread.
HOLD_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class FaultSettings:
    slow: float = 0.0  # seconds added before every answer of the bank's API
    down: bool = False  # every call of the bank's API answers 503 until cleared
    timeout_after_debit: bool = False  # debits are taken, then answered only after the fault clears


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._cleared = threading.Event()

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def set(self, settings: FaultSettings) -> None:
        with self._lock:
            self._cleared.set()  # answers held under the old settings go out now
            self._cleared = threading.Event()
            self._settings = settings

    def clear(self) -> None:
        self.set(FaultSettings())

    def before_call(self) -> None:
        """Every call of the bank's API (control endpoints excepted) passes here first."""
        settings = self.settings
        if settings.slow:
            time.sleep(settings.slow)
        if settings.down:
            raise BankDown("the bank is down (fault injected); try again later")

    def after_debit(self) -> None:
        """Hold a debit's answer, already committed, until the fault is cleared."""
        with self._lock:
            held, cleared = self._settings.timeout_after_debit, self._cleared
        if held:
            cleared.wait(HOLD_SECONDS)

    def view(self) -> dict[str, object]:
        return asdict(self.settings)
