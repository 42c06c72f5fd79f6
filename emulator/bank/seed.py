"""Card accounts from a seed file: JSON ``{"accounts": [{"bank_token", "balance_fen",
"currency"}]}``. The whole file is checked before any account is written."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from emulator.bank.errors import SeedFileError
from emulator.bank.models import AccountIn
from emulator.bank.store import BankStore


class SeedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[AccountIn]


def load_seed(store: BankStore, path: Path) -> int:
    """Create or reset the accounts listed in ``path``; returns how many."""
    try:
        seed = SeedFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise SeedFileError(f"cannot read the seed file {path}: {exc.strerror}") from None
    except (ValueError, ValidationError) as exc:
        raise SeedFileError(
            f'the seed file {path} is not {{"accounts": [{{"bank_token", "balance_fen", '
            f'"currency"}}]}}: {str(exc).splitlines()[0]}'
        ) from None
    for account in seed.accounts:
        store.put_account(account.bank_token, account.balance_fen, account.currency)
    return len(seed.accounts)
