"""The payment dongle as the app sees it, through the dongle daemon's client library.

The PIN is turned into an encrypted PIN hash here, in the app's process
(``dongle.pin_client.obtain_pin_token``): neither the daemon nor the USB wire ever sees it. It is
encrypted only for a key agreement that the dongle's registered payment key signed; the device
session learns that key from the gateway (``expect``), never from the daemon.
Signing holds a lease on the dongle for the whole PIN-token-then-sign exchange so another
client cannot slip a command in between.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dongle.client import DaemonClient, Priority
from dongle.errors import NoDongle
from dongle.pin_client import obtain_pin_token
from protocol.pin import DongleKey, KeyAgreementUnverified, pin_auth, sign_request_message
from tvapp.services.errors import MalformedAnswer, ServiceError

log = logging.getLogger("tvapp.dongle")

# How long a payment waits for another client (the staff tool) to release the dongle.
LEASE_WAIT_SECONDS = 5.0


class DeviceUnverified(ServiceError):
    """The dongle's key agreement is not signed by the payment key the gateway registered for
    it (or no device session told us that key yet): no PIN was sent."""

    def __init__(self, dongle_id: str) -> None:
        super().__init__(
            f"payment device {dongle_id or '(none)'} could not be verified; nothing was sent"
        )
        self.dongle_id = dongle_id


@dataclass(frozen=True, slots=True)
class DongleStatus:
    present: bool
    serial: str = ""
    state: str = ""
    firmware: str = ""
    pin_retries: int = 0

    @property
    def blocked(self) -> bool:
        return self.state == "pin_blocked"


@dataclass(frozen=True, slots=True)
class SessionProof:
    dongle_id: str
    key_rev: int
    signature: bytes


class DongleService:
    def __init__(self, socket_path: str | None = None, *, timeout: float = 10.0) -> None:
        # Two connections: looking at the dongle is routine (NORMAL priority), while a payment
        # the household is confirming right now may take the dongle first (HIGH).
        self.client = DaemonClient(socket_path, client_name="tvapp", timeout=timeout)
        self.payer = DaemonClient(
            socket_path, client_name="tvapp-pay", priority=Priority.HIGH, timeout=timeout
        )
        self._expected: DongleKey | None = None

    def expect(self, key: DongleKey | None) -> None:
        """The payment key that key agreements must be signed by, as the gateway registered it
        for the dongle of the current device session (None: no session, nothing is trusted)."""
        self._expected = key

    def close(self) -> None:
        self.client.close()
        self.payer.close()

    def status(self) -> DongleStatus:
        """What is plugged in; raises DaemonUnavailable when the daemon is not running."""
        try:
            info = self.client.info()
        except NoDongle:
            return DongleStatus(present=False)
        return DongleStatus(True, info.serial, info.state, info.firmware, info.pin_retries)

    def subscribe(self, callback: Callable[[Any], None]) -> Any:
        """Dongle events (inserted, removed, pin_blocked...) on a background thread."""
        return self.client.subscribe(callback)

    def sign_session(self, gateway_id: str, challenge: bytes, timestamp: int) -> SessionProof:
        signed = self.client.sign_session(gateway_id, challenge, timestamp)
        return SessionProof(signed.dongle_id, signed.key_rev, signed.signature)

    def sign_payment(
        self,
        sign_fields: dict[str, Any],
        pin: str,
        on_progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Sign the gateway's fields with the PIN; returns the body of the authorize call.

        Raises DeviceUnverified, the protocol's DonglePinInvalid (with ``retries``),
        DonglePinBlocked and the daemon's NoDongle / DongleRemoved / DongleBusy /
        DaemonUnavailable.
        """
        fields = decode_sign_fields(sign_fields)
        expected = self._expected
        if expected is None:
            log.warning("event=key_agreement_unverified reason=no_registered_key")
            raise DeviceUnverified("")
        with self.payer.acquire(expected.dongle_id, wait=LEASE_WAIT_SECONDS):
            try:
                token = obtain_pin_token(self.payer, pin, expected)
            except KeyAgreementUnverified:
                log.warning(
                    "event=key_agreement_unverified dongle=%s key_rev=%s",
                    expected.dongle_id,
                    expected.key_rev,
                )
                raise DeviceUnverified(expected.dongle_id) from None
            proof = pin_auth(token, sign_request_message(fields))
            signed = self.payer.sign_payment(fields, proof, on_progress=on_progress)
        return {
            "dongle_id": signed.dongle_id,
            "key_rev": signed.key_rev,
            "counter": signed.counter,
            "signature": base64.b64encode(signed.signature).decode(),
        }


def decode_sign_fields(sign_fields: dict[str, Any]) -> dict[str, Any]:
    """The gateway's JSON sign_fields as SIGN_PAYMENT wants them (challenge as bytes)."""
    try:
        challenge = base64.b64decode(sign_fields["challenge"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise MalformedAnswer("sign_fields challenge") from None
    return {**sign_fields, "challenge": challenge}
