"""Message ids shown for service states and utilities (translated by the kv rules)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StateText:
    title: str
    advice: str
    button: str  # "Retry" runs the failed step again; "Home" goes home


STATES: dict[str, StateText] = {
    "no_dongle": StateText(
        "Insert the payment dongle",
        "Plug the payment dongle into the box's USB port; the app continues by itself.",
        "Retry",
    ),
    "pin_blocked": StateText(
        "The payment dongle is blocked",
        "The PIN was wrong too many times. Please contact telecom staff to unblock it.",
        "Home",
    ),
    "network_down": StateText(
        "No connection to the payment service",
        "Check the box's network cable or Wi-Fi, then retry.",
        "Retry",
    ),
    "daemon_down": StateText(
        "The payment service of this box is not running",
        "Restart the box. If it happens again, contact telecom staff.",
        "Retry",
    ),
    "unverified": StateText(
        "This payment device could not be verified",
        "Your PIN was not sent and nothing was paid. Please contact telecom staff.",
        "Home",
    ),
    "dongle_busy": StateText(
        "The payment dongle is busy",
        "Another program is using the payment dongle. Wait a moment, then retry.",
        "Retry",
    ),
    "refused": StateText(
        "Payment not accepted",
        "Nothing was charged. The payment service said:",
        "Home",
    ),
    "mismatch": StateText(
        "Payment stopped",
        "The payment details from the server do not match the bill shown. Nothing was paid.",
        "Home",
    ),
    "processing": StateText(
        "Processing",
        "The bank is confirming the payment; the money may take a moment. The payment history shows when it is done.",
        "Home",
    ),
    "pending": StateText(
        "Payment saved, waiting for the network",
        "The payment is signed and saved on this box. It will be sent by itself when the network is back.",
        "Home",
    ),
    "error": StateText(
        "Something went wrong",
        "Please retry. If it happens again, contact telecom staff.",
        "Retry",
    ),
}

UTILITIES: dict[str, str] = {
    "electricity": "Electricity",
    "water": "Water",
    "gas": "Gas",
    "phone": "Phone",
    "tv": "TV",
}
UTILITY_ORDER = tuple(UTILITIES)  # electricity first, as households look for it first
