"""How money, account numbers, names and dates are shown on the TV.

Money arrives as integer fen with a currency code and is never turned into a float.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

_SYMBOLS = {"CNY": "¥", "HKD": "HK$", "TWD": "NT$", "USD": "US$"}


def format_money(amount_fen: int, currency: str = "CNY") -> str:
    """``12345, "CNY"`` -> ``"¥123.45"``; other currencies get their symbol or ISO code."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise TypeError("amounts are integer fen")
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    symbol = _SYMBOLS.get(currency, f"{currency} ")
    return f"{sign}{symbol}{yuan:,}.{fen:02d}"


def mask_account(number: str) -> str:
    """Show only the last four characters of an account number: ``"****5678"``.

    Numbers the gateway already masked (they contain ``*``) are shown as they are.
    """
    if "*" in number:
        return number
    tail = number[-4:] if len(number) > 4 else number[-1:]
    return "*" * 4 + tail


def mask_name(name: str) -> str:
    """Chinese-style name masking: ``张三丰`` -> ``张*丰``, ``李四`` -> ``李*``."""
    if "*" in name or len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def parse_date(value: str) -> date:
    """An ISO date or date-time (``2025-01-31`` or ``2025-01-31T08:00:00Z``) as a date."""
    return (
        datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        if "T" in value
        else (date.fromisoformat(value))
    )


def format_date(value: str | date) -> str:
    """Dates are shown as ``2025-01-31`` in every language: unambiguous and short."""
    day = parse_date(value) if isinstance(value, str) else value
    return day.isoformat()


def format_time(value: str) -> str:
    """A UTC ISO time-stamp as ``2025-01-31 08:00`` in the box's local time zone."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def format_period(value: str) -> str:
    """A billing period ``2025-01`` (or a date in it) as ``2025-01``."""
    return value[:7]


def format_fingerprint(hex_digest: str) -> str:
    """The first 64 bits of a hex digest in groups of four (``CCB9 BFD7 B6D0 98B4``): enough for a
    household or staff to match a receipt against the gateway's full hash, short enough to read
    aloud over the phone."""
    head = hex_digest[:16].upper()
    return " ".join(head[i : i + 4] for i in range(0, len(head), 4))
