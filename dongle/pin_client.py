"""Host side of the PIN protocol, run in the caller's process so the daemon never sees a PIN.

Each helper makes a fresh key agreement with the dongle (through the daemon), encrypts what the
dongle needs with ``protocol.pin.HostPinSession`` and relays only ciphertexts. Hold a lease
around a PIN flow (``client.acquire()``) so no other client's PIN command comes in between.
"""

from __future__ import annotations

from typing import Any

from dongle.client import DaemonClient
from protocol.pin import HostPinSession, check_pin, check_puk, pin_auth, sign_request_message


def _session(client: DaemonClient, serial: str | None) -> HostPinSession:
    return HostPinSession.start(client.key_agreement(serial))


def obtain_pin_token(client: DaemonClient, pin: str, serial: str | None = None) -> bytes:
    """The dongle's PIN token for ``pin`` (raises DonglePinInvalid with retries left, ...)."""
    session = _session(client, serial)
    pin_token_enc = client.pin_token(session.public_key, session.pin_hash_enc(pin), serial)
    return session.pin_token(pin_token_enc)


def payment_pin_auth(pin_token: bytes, fields: dict[str, Any]) -> bytes:
    """The ``pin_auth`` that SIGN_PAYMENT needs for exactly these request fields."""
    return pin_auth(pin_token, sign_request_message(fields))


def set_initial_pin(client: DaemonClient, pin: str, puk: str, serial: str | None = None) -> None:
    """Set the first PIN and the PUK of a certified dongle (staff group only)."""
    check_pin(pin)
    check_puk(puk)
    session = _session(client, serial)
    client.set_pin(session.public_key, session.new_pin_enc(pin), session.puk_enc(puk), serial)


def change_pin(client: DaemonClient, old: str, new: str, serial: str | None = None) -> None:
    check_pin(new)
    session = _session(client, serial)
    client.change_pin(
        session.public_key, session.pin_hash_enc(old), session.new_pin_enc(new), serial
    )


def unblock_pin(client: DaemonClient, puk: str, new_pin: str, serial: str | None = None) -> None:
    """Unblock a blocked PIN with the PUK, setting ``new_pin`` (staff group only)."""
    check_pin(new_pin)
    session = _session(client, serial)
    client.unblock_pin(
        session.public_key, session.puk_enc(puk), session.new_pin_enc(new_pin), serial
    )
