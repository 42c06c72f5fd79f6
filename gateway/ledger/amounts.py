"""Amounts as a person reads them in messages: ¥45.60 for CNY, 45.60 USD otherwise."""

from __future__ import annotations


def show(amount_fen: int, currency: str) -> str:
    sign = "-" if amount_fen < 0 else ""
    major, minor = divmod(abs(amount_fen), 100)
    if currency == "CNY":
        return f"{sign}¥{major:,}.{minor:02d}"
    return f"{sign}{major:,}.{minor:02d} {currency}"
