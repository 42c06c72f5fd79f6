"""A payment's state in the household's words (message ids, translated by the kv rules).

Every state the gateway or the journal can report has a word, and a tone whose colour only
repeats what the word says (a colour-blind household reads the word). A state this app does not
know yet still shows a word, never the gateway's id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StatusWord:
    word: str  # message id
    tone: str  # success | progress | returned | failed | dim: picks the colour


STATUS_WORDS: dict[str, StatusWord] = {
    # Money taken; the utility has not confirmed the write-off yet.
    "succeeded": StatusWord("Paid, being credited", "progress"),
    "credited": StatusWord("Credited", "success"),
    "processing": StatusWord("Processing", "progress"),
    "refunded": StatusWord("Refunded", "returned"),
    "failed": StatusWord("Not charged", "failed"),
    # Journaled on this box, signed, not yet confirmed by the gateway.
    "pending": StatusWord("Waiting for the network", "progress"),
    "refused": StatusWord("Refused", "failed"),
    "expired": StatusWord("Expired", "dim"),
    "canceled": StatusWord("Cancelled", "dim"),
    "requires_authorization": StatusWord("Not completed", "dim"),
}
UNKNOWN_STATUS = StatusWord("Status unknown: ask telecom staff", "dim")

# Why money went back, as the utility or staff gave it.
REFUND_REASONS: dict[str, str] = {
    "account_closed": "The utility account is closed",
    "bill_paid_elsewhere": "The bill was already paid elsewhere",
}
UNKNOWN_REFUND_REASON = "The utility did not accept the payment"
_REASON_CODE = re.compile(r"[a-z0-9_]{1,40}")

# 查询到账: what the utility said when asked just now, or why it could not be asked.
CREDITING_ANSWERS: dict[str, str] = {
    "asking": "Asking the utility...",
    "credited": "Credited",
    "not_yet": "Not credited yet, processing",
    "rejected": "Refunded",
    "not_taken": "Nothing was taken for this payment, so there is nothing to credit",
    "utility_unreachable": "The utility did not answer: try again in a few minutes",
    "utility_not_connected": "This utility cannot be asked yet: the payment shows Credited once it confirms",
    "network_down": "No connection to the payment service: try again later",
    "error": "The answer could not be read: try again later",
}
UTILITY_REF = "utility reference {ref}"


def status_word(status: str) -> StatusWord:
    return STATUS_WORDS.get(status, UNKNOWN_STATUS)


def refund_reason_words(reason: str | None) -> str:
    """A message id for a known reason code; staff's own words as written; a general sentence
    for a code this app does not know (a code is never shown as it is)."""
    if not reason:
        return UNKNOWN_REFUND_REASON
    if reason in REFUND_REASONS:
        return REFUND_REASONS[reason]
    return UNKNOWN_REFUND_REASON if _REASON_CODE.fullmatch(reason) else reason


def status_line(
    gettext: Callable[[str], str], status: str, utility_ref: str = "", reason: str = ""
) -> str:
    """The status as one line: the word, then the utility's reference (credited) or why the
    money went back (refunded)."""
    word = gettext(status_word(status).word)
    if status == "credited" and utility_ref:
        return f"{word} · {gettext(UTILITY_REF).format(ref=utility_ref)}"
    if status == "refunded":
        return f"{word} · {gettext(refund_reason_words(reason))}"
    return word


def crediting_line(
    gettext: Callable[[str], str], state: str, utility_ref: str = "", reason: str = ""
) -> str:
    """The answer of 查询到账 in words; "" before anything was asked."""
    if not state:
        return ""
    if state in ("credited", "rejected"):
        return status_line(
            gettext, "credited" if state == "credited" else "refunded", utility_ref, reason
        )
    return gettext(CREDITING_ANSWERS.get(state, CREDITING_ANSWERS["error"]))
