"""The device session with the gateway, opened by a dongle signature and renewed on expiry."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from tvapp.services.dongle import DongleService
from tvapp.services.errors import SessionExpired
from tvapp.services.gateway import Gateway
from tvapp.services.records import Household

log = logging.getLogger("tvapp.session")
T = TypeVar("T")


class DeviceSession:
    def __init__(self, gateway: Gateway, dongle: DongleService) -> None:
        self.gateway = gateway
        self.dongle = dongle
        self.household: Household | None = None
        self._lock = threading.Lock()

    def open(self) -> Household:
        """Challenge from the gateway, signed by the dongle, exchanged for a bearer token."""
        with self._lock:
            status = self.dongle.status()
            challenge, gateway_id, timestamp = self.gateway.session_challenge(status.serial)
            proof = self.dongle.sign_session(gateway_id, challenge, timestamp)
            self.household = self.gateway.open_session(
                proof.dongle_id, proof.key_rev, challenge, timestamp, proof.signature
            )
            log.info("event=session_opened dongle=%s", proof.dongle_id)
            return self.household

    def call(self, request: Callable[[Gateway], T]) -> T:
        """Run a gateway request, opening a (new) session first when needed."""
        if self.gateway.token is None:
            self.open()
        try:
            return request(self.gateway)
        except SessionExpired:
            self.open()
            return request(self.gateway)
