"""The confirmation text a payment signs the hash of (docs/protocol.md §5.1).

The app draws the confirm screen from a list of lines and the dongle signs
``display_hash = SHA-256(UTF-8(NFC("\\n".join(lines))))``; the app sends the text with the
authorization and the gateway recomputes the hash and checks the text states the amount, as
W3C Secure Payment Confirmation does with the text its dialog shows.

The amount rule, shared by the app (which writes amounts with ``tvapp.format.format_money``) and
the gateway: an amount is a run of digits, optionally grouped by commas in threes, a point and
exactly two digits (``123.45``, ``1,234.56``), not touching other digits, points or commas. The
text must state exactly one amount, and it must be the payment's amount in yuan (fen / 100).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from protocol.errors import PayloadError

MAX_DISPLAY_TEXT = 1000  # characters: a confirm screen holds a few short lines
_AMOUNT = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)\.(\d{2})(?![\d.,]?\d)")


def canonical_text(lines: list[str]) -> str:
    """The lines as one text: NFC, joined by ``\\n``; PayloadError for a line with a control
    character (a line break inside a line would make two texts hash alike)."""
    for line in lines:
        if any(unicodedata.category(ch) == "Cc" for ch in line):
            raise PayloadError("a confirmation line must not contain control characters")
    return unicodedata.normalize("NFC", "\n".join(lines))


def check_display_text(text: str) -> None:
    """PayloadError unless ``text`` is a canonical confirmation text as ``canonical_text`` makes."""
    if not isinstance(text, str) or not text or len(text) > MAX_DISPLAY_TEXT:
        raise PayloadError(
            f"the confirmation text must be 1..{MAX_DISPLAY_TEXT} characters of the screen"
        )
    if unicodedata.normalize("NFC", text) != text:
        raise PayloadError("the confirmation text must be in Unicode NFC")
    canonical_text(text.split("\n"))


def display_hash(text: str) -> bytes:
    """SHA-256 of the canonical confirmation text (32 bytes)."""
    check_display_text(text)
    return hashlib.sha256(text.encode("utf-8")).digest()


def stated_amounts_fen(text: str) -> list[int]:
    """Every amount the text states, in fen, by the rule in this module's docstring."""
    return [
        int(whole.replace(",", "")) * 100 + int(cents) for whole, cents in _AMOUNT.findall(text)
    ]


def states_amount(text: str, amount_fen: int) -> bool:
    """Whether ``text`` states exactly one amount and it is ``amount_fen``."""
    return stated_amounts_fen(text) == [amount_fen]
