"""The fields the gateway asks the dongle to sign, checked against the bill the household saw.

The gateway is not trusted to ask for what the confirm screen shows: a gateway that lied could
otherwise collect a valid signature over ten times the amount, for another account. Every signed
field is compared with the listed bill (and the payment the gateway created) before the PIN is
asked for and again right before signing; a difference refuses the payment, unsigned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tvapp.services.errors import ServiceError
from tvapp.services.records import Bill

# A payment's signed time lies before its expiry, and not longer before it than this: gateways
# give payments minutes, not days. Measured against the gateway's own expiry, not the box's clock,
# which may be wrong before NTP has run.
MAX_PAYMENT_LIFETIME = 24 * 3600


class DetailsMismatch(ServiceError):
    """The payment details from the gateway are not those of the bill shown; nothing was signed.

    ``field`` names the first signed field that differs (for staff, in the log)."""

    def __init__(self, field: str) -> None:
        super().__init__(
            f"the payment details from the server do not match the bill shown ({field}); "
            "nothing was paid"
        )
        self.field = field


def _timestamp_sane(timestamp: int, expires_at: str) -> bool:
    try:
        expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return 0 < timestamp < expiry <= timestamp + MAX_PAYMENT_LIFETIME


def check_sign_fields(
    fields: dict[str, Any],
    bill: Bill,
    payment_id: str,
    expires_at: str,
    gateway_id: str | None,
) -> None:
    """DetailsMismatch unless ``fields`` (as the gateway sent them) describe ``bill`` exactly.

    ``gateway_id`` is the gateway identity the dongle signed for the device session, when known.
    """
    expected: list[tuple[str, bool]] = [
        ("amount_fen", fields.get("amount_fen") == bill.amount_fen),
        ("currency", fields.get("currency") == bill.currency),
        ("bill_ref", fields.get("bill_ref") == bill.bill_ref),
        ("biller", fields.get("biller") == bill.biller_code),
        # The number exactly as the screen shows it: the dongle signs what was read.
        ("account", fields.get("account") == bill.account_no_masked),
        ("payment_id", fields.get("payment_id") == payment_id),
        ("gateway_id", gateway_id is None or fields.get("gateway_id") == gateway_id),
        (
            "timestamp",
            isinstance(fields.get("timestamp"), int)
            and _timestamp_sane(fields["timestamp"], expires_at),
        ),
    ]
    for name, matches in expected:
        if not matches:
            raise DetailsMismatch(name)
