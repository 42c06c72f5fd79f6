"""Host side of the PIN protocol, run in the caller's process so the daemon never sees a PIN.

Each helper makes a fresh key agreement with the dongle (through the daemon), checks that the
dongle's payment key signed it over a fresh nonce, encrypts what the dongle needs with
``protocol.pin.HostPinSession`` and relays only ciphertexts. The payment key to check against,
a ``DongleKey``, must come from outside the daemon (the gateway, GENERATE_KEY, a verified
attestation): a daemon that put its own key in the dongle's place would otherwise receive the PIN
hash. There is no unbound path: an unverified key raises ``KeyAgreementUnverified`` before any
PIN is encrypted. Hold a lease around a PIN flow (``client.acquire()``) so no other client's PIN
command comes in between.
"""

from __future__ import annotations

import os
from typing import Any

from dongle.client import DaemonClient
from protocol.pin import (
    KEY_AGREEMENT_NONCE_SIZE,
    DongleKey,
    HostPinSession,
    check_pin,
    check_puk,
    pin_auth,
    sign_request_message,
    verify_key_agreement,
)


def _session(client: DaemonClient, dongle: DongleKey) -> HostPinSession:
    nonce = os.urandom(KEY_AGREEMENT_NONCE_SIZE)
    offer = client.key_agreement(nonce, dongle.dongle_id)
    verify_key_agreement(dongle, offer.key, nonce, offer.signature)
    return HostPinSession.start(offer.key)


def obtain_pin_token(client: DaemonClient, pin: str, dongle: DongleKey) -> bytes:
    """The dongle's PIN token for ``pin`` (raises DonglePinInvalid with retries left, ...)."""
    session = _session(client, dongle)
    pin_token_enc = client.pin_token(
        session.public_key, session.pin_hash_enc(pin), dongle.dongle_id
    )
    return session.pin_token(pin_token_enc)


def payment_pin_auth(pin_token: bytes, fields: dict[str, Any]) -> bytes:
    """The ``pin_auth`` that SIGN_PAYMENT needs for exactly these request fields."""
    return pin_auth(pin_token, sign_request_message(fields))


def set_initial_pin(client: DaemonClient, pin: str, puk: str, dongle: DongleKey) -> None:
    """Set the first PIN and the PUK of a certified dongle (staff group only)."""
    check_pin(pin)
    check_puk(puk)
    session = _session(client, dongle)
    client.set_pin(
        session.public_key, session.new_pin_enc(pin), session.puk_enc(puk), dongle.dongle_id
    )


def change_pin(client: DaemonClient, old: str, new: str, dongle: DongleKey) -> None:
    check_pin(new)
    session = _session(client, dongle)
    client.change_pin(
        session.public_key, session.pin_hash_enc(old), session.new_pin_enc(new), dongle.dongle_id
    )


def unblock_pin(client: DaemonClient, puk: str, new_pin: str, dongle: DongleKey) -> None:
    """Unblock a blocked PIN with the PUK, setting ``new_pin`` (staff group only)."""
    check_pin(new_pin)
    session = _session(client, dongle)
    client.unblock_pin(
        session.public_key, session.puk_enc(puk), session.new_pin_enc(new_pin), dongle.dongle_id
    )
