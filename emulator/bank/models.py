"""Request bodies of the bank's API; anything else is refused with 422 before it reaches the
books."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_FEN = 10**12  # ten billion yuan: far above any household debit, far below SQLite's integers

# Keys and tokens travel in URL paths and CSV cells: a plain alphabet keeps both unambiguous.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Token = Annotated[str, Field(pattern=NAME_PATTERN)]
Key = Annotated[str, Field(pattern=NAME_PATTERN)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class DebitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    idempotency_key: Key
    bank_token: Token
    amount_fen: Annotated[int, Field(gt=0, le=MAX_FEN)]
    currency: Currency


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    bank_token: Token
    balance_fen: Annotated[int, Field(ge=0, le=MAX_FEN)]
    currency: Currency = "CNY"


class FaultsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    slow: Annotated[float, Field(ge=0, le=60)] = 0.0
    down: bool = False
    timeout_after_debit: bool = False
