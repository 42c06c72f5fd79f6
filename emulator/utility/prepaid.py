"""Prepaid accounts (远程费控) whose balance the utility keeps: what a meter used and what that cost,
day by day, on the simulator's clock.

Pure: the store hands in the account and its credits, this derives the balance and the history.
Nothing runs in the background; the same inputs give the same reading on every call. The utility
settles each day once it is over (日结, UTC days like the statements): the day's use at the
account's price is taken from the balance, with the purchases of that day already counted. A
balance that cannot pay a whole day down to the overdraft limit pays what it can and the supply is
cut for the rest of that day; a purchase restores it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

HISTORY_DAYS = 30
_MILLI_FEN_WH_PER_FEN_KWH = 1_000_000  # Wh × milli-fen/kWh ÷ this = fen


@dataclass(frozen=True, slots=True)
class PrepaidAccount:
    account_no: str
    opening_fen: int  # the balance at 00:00 UTC of ``since``
    currency: str
    daily_use_wh: int
    price_milli_fen_per_kwh: int
    overdraft_fen: int  # the balance may go down to minus this
    since: date


@dataclass(frozen=True, slots=True)
class Credit:
    at: int  # Unix seconds
    amount_fen: int


@dataclass(frozen=True, slots=True)
class DayUse:
    day: date
    used_wh: int
    spent_fen: int


@dataclass(frozen=True, slots=True)
class Reading:
    balance_fen: int
    # The last HISTORY_DAYS settled days, oldest first; fewer for a younger account (the utility
    # has no record of days before it), so a mean over them is the account's real one.
    usage: list[DayUse]


def day_of(unix: int) -> date:
    return datetime.fromtimestamp(unix, UTC).date()


def _day_end(day: date) -> int:
    """Unix seconds of the midnight that ends ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) + 86400


def _cost(used_wh: int, price: int) -> int:
    """Fen for ``used_wh`` at ``price``, rounded up: the utility never supplies a Wh for free."""
    return -(-used_wh * price // _MILLI_FEN_WH_PER_FEN_KWH)


def _settle(account: PrepaidAccount, balance: int) -> tuple[int, int]:
    """(Wh used, fen spent) of one day that starts with ``balance``."""
    price = account.price_milli_fen_per_kwh
    full = _cost(account.daily_use_wh, price)
    if balance - full >= -account.overdraft_fen:
        return account.daily_use_wh, full
    # Cut off: the Wh the room down to the limit pays for, whose cost (rounded up) still fits.
    room = max(0, balance + account.overdraft_fen)
    used = room * _MILLI_FEN_WH_PER_FEN_KWH // price
    return used, _cost(used, price)


def read(account: PrepaidAccount, credits: Iterable[Credit], now: int) -> Reading:
    """The balance at ``now`` and the last settled days. Credits before ``since`` are part of the
    opening balance and not counted again."""
    start = _day_end(account.since) - 86400
    pending = sorted((c for c in credits if start <= c.at <= now), key=lambda c: c.at)
    today = day_of(now)
    balance, taken, history = account.opening_fen, 0, []
    day = account.since
    while day < today:
        end = _day_end(day)
        while taken < len(pending) and pending[taken].at < end:
            balance += pending[taken].amount_fen
            taken += 1
        used, spent = _settle(account, balance)
        balance -= spent
        if (today - day).days <= HISTORY_DAYS:
            history.append(DayUse(day, used, spent))
        day += timedelta(days=1)
    balance += sum(c.amount_fen for c in pending[taken:])
    return Reading(balance, history)
