"""The dongle's registered payment key, as the gateway states it when it opens a device session.

The app checks every key agreement of the dongle against this key (``DongleService.expect``): it
comes over the app's authenticated channel to the gateway, never from the dongle daemon, so a
daemon that puts its own key-agreement key in the dongle's place is caught before any PIN is
encrypted for it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from protocol.errors import PayloadError
from protocol.pin import DongleKey
from protocol.signing import load_public_key
from tvapp.services.errors import MalformedAnswer


def registered_key(session_answer: dict[str, Any], dongle_id: str) -> DongleKey:
    """The ``dongle_public_key`` (SEC1, base64) and ``key_rev`` of a device-session answer."""
    key_rev = session_answer.get("key_rev")
    encoded = session_answer.get("dongle_public_key")
    if not isinstance(key_rev, int) or isinstance(key_rev, bool) or not isinstance(encoded, str):
        raise MalformedAnswer("session dongle key")
    try:
        public_key = base64.b64decode(encoded, validate=True)
        load_public_key(public_key)
    except (binascii.Error, ValueError, PayloadError):
        raise MalformedAnswer("session dongle key") from None
    return DongleKey(dongle_id, key_rev, public_key)
