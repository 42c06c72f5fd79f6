"""The utility's balance of a remote (远程费控) meter: ``GET {utility}/meters/{account_no}``.

Asked with a short timeout while the household waits for the meter screen; whatever comes back
is checked field by field (the utility is outside our trust), and a failure is a typed error the
caller answers with the last known balance."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import quote

from gateway.dispatch.utility import DeliveryError
from gateway.dispatch.utility import _request as utility_request
from gateway.errors import GatewayError

TIMEOUT_SECONDS = 2.0  # the household is looking at a progress indicator meanwhile
USAGE_DAYS = 30
MAX_FEN = 10**10
MAX_WH = 10**9
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RemoteBalanceError(GatewayError):
    """The utility did not give a usable balance; the message says why (for the log)."""


@dataclass(frozen=True, slots=True)
class RemoteBalance:
    balance_fen: int
    currency: str
    as_of: int  # Unix seconds
    # What the last (up to) 30 days of usage cost, and how many days that is.
    recent_spend_fen: int
    recent_days: int

    def days_left(self) -> int | None:
        """Balance ÷ mean daily spend, rounded down; None with no spending to go by."""
        if self.recent_spend_fen <= 0:
            return None
        return max(0, self.balance_fen) * self.recent_days // self.recent_spend_fen


def utility_base(notify_url: str) -> str:
    """The utility's base URL: the biller's notify_url (write-offs go to ``{base}/writeoffs``)."""
    return notify_url.rstrip("/").removesuffix("/writeoffs")


def fetch_balance(
    notify_url: str, account_no: str, timeout: float = TIMEOUT_SECONDS
) -> RemoteBalance:
    url = f"{utility_base(notify_url)}/meters/{quote(account_no, safe='')}"
    try:
        status, raw = utility_request("GET", url, timeout)
    except DeliveryError as exc:
        raise RemoteBalanceError(str(exc)) from None
    if status != 200:
        raise RemoteBalanceError(f"the utility answered {status} for the meter balance")
    return parse_balance(raw, account_no)


def _int(data: dict[str, object], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RemoteBalanceError(f"{name} is not a whole number in {low}..{high}")
    return value


def _as_of(value: object) -> int:
    if not isinstance(value, str):
        raise RemoteBalanceError("as_of is not an ISO time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RemoteBalanceError("as_of is not an ISO time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def parse_balance(raw: bytes, account_no: str) -> RemoteBalance:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RemoteBalanceError("the meter answer is not JSON") from None
    if not isinstance(data, dict) or data.get("account_no") != account_no:
        raise RemoteBalanceError("the meter answer is not about this account")
    if data.get("currency") != "CNY":
        raise RemoteBalanceError("the meter answer is not in CNY")
    balance = _int(data, "balance_fen", -MAX_FEN, MAX_FEN)
    usage = data.get("usage")
    if not isinstance(usage, list) or len(usage) > 366:
        raise RemoteBalanceError("usage is not a list of days")
    spends = []
    for day in usage:
        if not isinstance(day, dict) or not isinstance(day.get("day"), str):
            raise RemoteBalanceError("a usage day is not {day, used_wh, spent_fen}")
        if not _DAY.match(day["day"]):
            raise RemoteBalanceError("a usage day is not YYYY-MM-DD")
        try:
            date.fromisoformat(day["day"])
        except ValueError:
            raise RemoteBalanceError("a usage day is not a date") from None
        _int(day, "used_wh", 0, MAX_WH)
        spends.append(_int(day, "spent_fen", 0, MAX_FEN))
    recent = spends[-USAGE_DAYS:]  # the answer lists days oldest first
    return RemoteBalance(balance, "CNY", _as_of(data.get("as_of")), sum(recent), len(recent))
