"""The simulator's seed: accounts, bills and prepaid accounts it is told about, through
``POST /control/seed`` or ``serve --seed FILE`` (the same JSON). A seed is checked whole before
any of it is applied."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from emulator.utility.prepaid import PrepaidAccount, day_of
from emulator.utility.store import UtilityStore

ACCOUNT_NO = r"^[A-Za-z0-9_-]{1,32}$"
MAX_HISTORY_DAYS = 3660  # a prepaid account's ``since``: each reading walks its days


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_no: str = Field(min_length=1, max_length=32)
    status: Literal["open", "closed"]


class BillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_no: str = Field(min_length=1, max_length=32)
    bill_ref: str = Field(min_length=1, max_length=64)
    status: Literal["unpaid", "paid_elsewhere"]
    amount_fen: int | None = Field(default=None, gt=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class PrepaidIn(BaseModel):
    """A prepaid (远程费控) account: its balance at the start of ``since`` (default: the day it is
    seeded), what its meter uses a day and at what price."""

    model_config = ConfigDict(extra="forbid")
    account_no: str = Field(pattern=ACCOUNT_NO)
    balance_fen: StrictInt = Field(ge=-(10**9), le=10**9)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    daily_use_wh: StrictInt = Field(ge=0, le=10**6)
    price_milli_fen_per_kwh: StrictInt = Field(gt=0, le=10**7)
    overdraft_limit_fen: StrictInt = Field(default=0, ge=0, le=10**8)
    since: date | None = None

    @model_validator(mode="after")
    def within_overdraft(self) -> Self:
        if self.balance_fen < -self.overdraft_limit_fen:
            raise ValueError(
                f"balance_fen {self.balance_fen} is below the overdraft limit "
                f"(-{self.overdraft_limit_fen}); raise overdraft_limit_fen or the balance"
            )
        return self


class Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[AccountIn] = []
    bills: list[BillIn] = []
    prepaid: list[PrepaidIn] = []


class SeedRejected(ValueError):
    """The seed is well-formed but cannot be applied as it stands; nothing of it was applied."""


def _prepaid_accounts(seed: Seed, now: int) -> list[PrepaidAccount]:
    today = day_of(now)
    accounts = []
    for p in seed.prepaid:
        since = p.since or today
        if not today - timedelta(days=MAX_HISTORY_DAYS) <= since <= today:
            raise SeedRejected(
                f"prepaid {p.account_no}: since {since} must be between "
                f"{MAX_HISTORY_DAYS} days ago and today ({today}, the simulator's clock)"
            )
        accounts.append(
            PrepaidAccount(
                p.account_no,
                p.balance_fen,
                p.currency,
                p.daily_use_wh,
                p.price_milli_fen_per_kwh,
                p.overdraft_limit_fen,
                since,
            )
        )
    return accounts


def apply_seed(store: UtilityStore, seed: Seed, now: int) -> None:
    """Apply the whole seed, after checking all of it against the clock (``now``)."""
    prepaid = _prepaid_accounts(seed, now)
    for account in seed.accounts:
        store.set_account(account.account_no, account.status)
    for bill in seed.bills:
        store.set_bill(bill.account_no, bill.bill_ref, bill.status, bill.amount_fen, bill.currency)
    for meter in prepaid:
        store.set_prepaid(meter)


def load_seed(text: str) -> Seed:
    """A seed file's content (JSON ``{"accounts": [...], "bills": [...], "prepaid": [...]}``)."""
    return Seed.model_validate(json.loads(text))
