"""Importing a utility's bills from CSV or JSON: every row validated, all rows or none written.

Columns (CSV header / JSON object keys): biller_code, biller_name, utility, account_no,
holder_name, address, bill_ref, period (YYYY-MM), amount_fen, currency, due_date (YYYY-MM-DD),
and optionally usage_quantity (a decimal number in the utility's unit) and bind_code (the 6-digit
query code printed on the bill; stored hashed, it lets a household bind the account by code).
Re-importing an identical bill is a no-op; a bill whose amount changed is refused. A bind code
replaces the account's previous one; rows of one account must not disagree about it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit
from gateway.bind_codes import hash_bind_code, is_bind_code
from gateway.clock import now
from gateway.db.models import Bill, Biller, Usage, UtilityAccount
from gateway.errors import ImportFileError
from gateway.ids import new_id

UNITS = {"electricity": "kWh", "water": "m3", "gas": "m3", "phone": "min", "tv": "day"}
COLUMNS = (
    "biller_code",
    "biller_name",
    "utility",
    "account_no",
    "holder_name",
    "address",
    "bill_ref",
    "period",
    "amount_fen",
    "currency",
    "due_date",
)
OPTIONAL = ("usage_quantity", "bind_code")
MAX_ROWS = 1_000_000
_CODE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ACCOUNT = re.compile(r"[A-Za-z0-9-]{1,32}")
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class BillRow:
    biller_code: str
    biller_name: str
    utility: str
    account_no: str
    holder_name: str
    address: str
    bill_ref: str
    period: str
    amount_fen: int
    currency: str
    due_date: str
    usage_milli: int | None = None
    bind_code: str | None = None


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValueError(f"{name} must be a text of 1..{limit} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError(f"{name} must not contain control characters")
    return value.strip()


def _match(value: Any, name: str, pattern: re.Pattern[str], hint: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{name} must be {hint}")
    return value


def parse_row(raw: dict[str, Any]) -> BillRow:
    """One validated row; ValueError naming the first bad field."""
    unknown = sorted(set(raw) - set(COLUMNS) - set(OPTIONAL))
    if unknown:
        raise ValueError(f"unknown columns: {', '.join(unknown)}")
    missing = [c for c in COLUMNS if c not in raw]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    utility = raw["utility"]
    if utility not in UNITS:
        raise ValueError(f"utility must be one of {', '.join(UNITS)}")
    amount = raw["amount_fen"]
    if isinstance(amount, str) and amount.isdigit():
        amount = int(amount)
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= 10**12:
        raise ValueError("amount_fen must be a whole number of fen, 1..10^12")
    due = raw["due_date"]
    try:
        date.fromisoformat(due)
    except (TypeError, ValueError):
        raise ValueError("due_date must be a date YYYY-MM-DD") from None
    if not (isinstance(due, str) and len(due) == 10):
        raise ValueError("due_date must be a date YYYY-MM-DD")
    usage = raw.get("usage_quantity")
    usage_milli = None
    if usage not in (None, ""):
        try:
            quantity = Decimal(str(usage))
        except InvalidOperation:
            raise ValueError("usage_quantity must be a decimal number") from None
        if not quantity.is_finite() or not 0 <= quantity <= 10**9:
            raise ValueError("usage_quantity must be between 0 and 10^9")
        usage_milli = int(quantity * 1000)
    bind_code = raw.get("bind_code")
    if bind_code == "":
        bind_code = None
    if bind_code is not None and not is_bind_code(bind_code):
        raise ValueError("bind_code must be exactly 6 digits (or empty)")
    return BillRow(
        biller_code=_match(
            raw["biller_code"], "biller_code", _CODE, "1..64 letters, digits, . _ -"
        ),
        biller_name=_text(raw["biller_name"], "biller_name", 64),
        utility=utility,
        account_no=_match(raw["account_no"], "account_no", _ACCOUNT, "1..32 letters, digits, -"),
        holder_name=_text(raw["holder_name"], "holder_name", 64),
        address=_text(raw["address"], "address", 200),
        bill_ref=_match(raw["bill_ref"], "bill_ref", _CODE, "1..64 letters, digits, . _ -"),
        period=_match(raw["period"], "period", _PERIOD, "a month YYYY-MM"),
        amount_fen=amount,
        currency=_match(raw["currency"], "currency", _CURRENCY, "an ISO 4217 code such as CNY"),
        due_date=due,
        usage_milli=usage_milli,
        bind_code=bind_code,
    )


def read_file(path: Path, fmt: str | None = None) -> list[BillRow]:
    """Parse and validate a whole file; ImportFileError listing up to 20 bad rows."""
    fmt = fmt or ("json" if path.suffix.lower() == ".json" else "csv")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(
            f"cannot read {path}: {exc}; give a UTF-8 {fmt.upper()} file"
        ) from None
    raws: list[Any]
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"{path} is not valid JSON ({exc})") from None
        raws = data.get("bills") if isinstance(data, dict) else data
        if not isinstance(raws, list):
            raise ImportFileError(f'{path}: expected {{"bills": [...]}} or a JSON array of bills')
    else:
        reader = csv.DictReader(io.StringIO(text))
        raws = list(reader)
    if len(raws) > MAX_ROWS:
        raise ImportFileError(f"{path} has more than {MAX_ROWS} rows; split it")
    rows: list[BillRow] = []
    problems: list[str] = []
    for number, raw in enumerate(raws, start=1):
        try:
            if not isinstance(raw, dict) or None in raw:
                raise ValueError("the row does not have the header's columns")
            rows.append(parse_row(raw))
        except ValueError as exc:
            problems.append(f"row {number}: {exc}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ImportFileError(f"{path}: nothing imported, fix these rows:\n  {shown}{more}")
    return rows


def upsert_account(session: Session, row: BillRow) -> UtilityAccount:
    biller = session.get(Biller, row.biller_code)
    if biller is None:
        session.add(Biller(code=row.biller_code, name=row.biller_name, utility=row.utility))
    elif biller.utility != row.utility:
        raise ImportFileError(
            f"biller {row.biller_code} is a {biller.utility} biller, not {row.utility}"
        )
    account = session.scalar(
        select(UtilityAccount).where(
            UtilityAccount.utility == row.utility, UtilityAccount.account_no == row.account_no
        )
    )
    if account is None:
        account = UtilityAccount(
            id=new_id("acc"),
            biller_code=row.biller_code,
            utility=row.utility,
            account_no=row.account_no,
            holder_name=row.holder_name,
            address=row.address,
            unit=UNITS[row.utility],
        )
        session.add(account)
        session.flush()
    else:
        # The utility is the source of truth for who holds the account and where.
        account.holder_name, account.address = row.holder_name, row.address
    return account


def add_bill(session: Session, account: UtilityAccount, row: BillRow) -> bool:
    """Insert the bill; False when the identical bill exists; ImportFileError when it differs."""
    existing = session.scalar(
        select(Bill).where(Bill.account_id == account.id, Bill.bill_ref == row.bill_ref)
    )
    if existing is not None:
        same = (existing.amount_fen, existing.currency, existing.period, existing.due_date) == (
            row.amount_fen,
            row.currency,
            row.period,
            row.due_date,
        )
        if not same:
            raise ImportFileError(
                f"bill {row.bill_ref} of account …{row.account_no[-4:]} exists with other values; "
                "issue a corrected bill under a new bill_ref"
            )
        return False
    session.add(
        Bill(
            id=new_id("bill"),
            account_id=account.id,
            bill_ref=row.bill_ref,
            period=row.period,
            amount_fen=row.amount_fen,
            currency=row.currency,
            due_date=row.due_date,
            issued_at=now(),
            status="unpaid",
        )
    )
    if row.usage_milli is not None:
        session.merge(
            Usage(
                account_id=account.id,
                month=row.period,
                quantity_milli=row.usage_milli,
                amount_fen=row.amount_fen,
                currency=row.currency,
            )
        )
    return True


def import_rows(session: Session, rows: list[BillRow], source: str) -> int:
    """Write all rows in the caller's transaction; returns how many bills were new."""
    added = 0
    codes: dict[str, tuple[UtilityAccount, str]] = {}
    for row in rows:
        account = upsert_account(session, row)
        added += add_bill(session, account, row)
        if row.bind_code is not None:
            seen = codes.setdefault(account.id, (account, row.bind_code))
            if seen[1] != row.bind_code:
                raise ImportFileError(
                    f"account …{row.account_no[-4:]} has two different bind codes in this file; "
                    "send one code per account"
                )
    # One hash per account, not per bill row: each costs tens of milliseconds on purpose.
    for account, code in codes.values():
        account.bind_code_hash = hash_bind_code(code)
    audit.record(
        session, "cli", "bills_import", source, rows=len(rows), added=added, codes=len(codes)
    )
    return added
