"""An HTTP relay in front of the bench's gateway that holds one request until the test lets it go.

A test that interrupts the staff tool must do it at a point it controls, not race the process:
the relay signals ``held`` when the tool's request for ``hold_path`` arrives and forwards it only
after ``release()``, so the tool is known to be waiting right there when the test signals it.
"""

from __future__ import annotations

import threading

from tests.fixtures.http_relay import HttpRelay


class HoldingGateway(HttpRelay):
    def __init__(self, upstream: str, hold_path: str) -> None:
        self.hold_path = hold_path
        self.held = threading.Event()
        self._released = threading.Event()
        super().__init__(upstream)

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        super().close()

    def before(self, method: str, path: str) -> None:
        if path == self.hold_path:
            self.held.set()
            self._released.wait(60)
