"""The device session with the gateway, opened by a dongle signature and renewed on expiry.

The session belongs to the dongle that signed it: the household is whoever that dongle was
issued to. When the dongle goes away or another one is plugged in, the session is forgotten
and a new one is opened for whatever dongle is there.

Opening the session also tells the app the dongle's registered payment key: the dongle service
encrypts a PIN only for key agreements signed by it, and trusts nothing once the session is gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from protocol.pin import DongleKey
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
        self.dongle_id: str | None = None  # the dongle that opened the current session
        self.dongle_key: DongleKey | None = None  # its payment key, as the gateway registered it
        self._lock = threading.Lock()

    def open(self) -> Household:
        """Challenge from the gateway, signed by the dongle, exchanged for a bearer token."""
        with self._lock:
            status = self.dongle.status()
            challenge, gateway_id, timestamp = self.gateway.session_challenge(status.serial)
            proof = self.dongle.sign_session(gateway_id, challenge, timestamp)
            self.household, self.dongle_key = self.gateway.open_session(
                proof.dongle_id, proof.key_rev, challenge, timestamp, proof.signature
            )
            self.dongle_id = proof.dongle_id
            self.dongle.expect(self.dongle_key)
            log.info("event=session_opened dongle=%s", proof.dongle_id)
            return self.household

    def ensure(self, serial: str) -> Household:
        """The session of dongle ``serial``: the current one, or a new one if the dongle changed."""
        household = self.household
        if household is not None and self.dongle_id == serial and self.gateway.token:
            return household
        return self.open()

    def forget(self) -> None:
        """Drop the session and the household it showed (the dongle was removed or swapped).

        Called on the UI thread, so it does not wait for an ``open`` in progress: a session that
        open finishes for the old dongle fails ``ensure`` for the new one and is replaced.
        """
        if self.dongle_id is not None:
            log.info("event=session_forgotten dongle=%s", self.dongle_id)
        self.gateway.token = None
        self.household = None
        self.dongle_id = None
        self.dongle_key = None
        self.dongle.expect(None)

    def call(self, request: Callable[[Gateway], T]) -> T:
        """Run a gateway request, opening a (new) session first when needed."""
        if self.gateway.token is None:
            self.open()
        try:
            return request(self.gateway)
        except SessionExpired:
            self.open()
            return request(self.gateway)
