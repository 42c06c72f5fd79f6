"""Binding a utility account to a household: proof by the holder's name or by the bind code
printed on the bill, with wrong codes counted per household so codes cannot be guessed.

A wrong code must stay counted although the request fails, so ``bind_account`` returns a
``Refusal`` instead of raising inside the transaction: the caller commits, then raises it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gateway.bind_codes import verify_bind_code
from gateway.clock import now
from gateway.db.models import Bill, Biller, BindFailure, Household, UtilityAccount
from gateway.errors import APIError, Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable
from gateway.views import account_view

MAX_WRONG_CODES = 5
WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class Proof:
    """What the household typed: exactly one of the two is set."""

    holder_name: str | None = None
    bind_code: str | None = None

    def check(self) -> None:
        if (self.holder_name is None) == (self.bind_code is None):
            raise Unprocessable(
                "Send exactly one of bind_code (the 6-digit code printed on the bill) or "
                "holder_name (the account holder's name as printed on the bill).",
                code="bind_proof_required",
            )


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error to raise after the transaction that recorded the attempt has committed."""

    error: APIError


def _recent_failures(session: Session, household_id: int, t: int) -> list[int]:
    return list(
        session.scalars(
            select(BindFailure.at)
            .where(BindFailure.household_id == household_id, BindFailure.at > t - WINDOW_SECONDS)
            .order_by(BindFailure.at)
        )
    )


def _paused(failures: list[int], t: int) -> TooManyRequests | None:
    if len(failures) < MAX_WRONG_CODES:
        return None
    # The pause ends when the oldest failure that still counts leaves the window.
    until = failures[-MAX_WRONG_CODES] + WINDOW_SECONDS
    wait = max(1, until - t)
    clock = datetime.fromtimestamp(until, UTC).strftime("%H:%M UTC")
    return TooManyRequests(
        f"Too many wrong bind codes from this household; try again in {(wait + 59) // 60} "
        f"minutes (after {clock}), with the code printed on the latest bill.",
        headers={"Retry-After": str(wait)},
    )


def _record_failure(session: Session, household_id: int, t: int) -> int:
    """Log a wrong code and forget those past the window; returns how many tries are left."""
    session.execute(
        delete(BindFailure).where(
            BindFailure.household_id == household_id, BindFailure.at <= t - WINDOW_SECONDS
        )
    )
    session.add(BindFailure(household_id=household_id, at=t))
    session.flush()
    count = session.scalar(
        select(func.count())
        .select_from(BindFailure)
        .where(BindFailure.household_id == household_id)
    )
    return max(0, MAX_WRONG_CODES - (count or 0))


def _check_code(
    session: Session, household_id: int, account: UtilityAccount, code: str, t: int
) -> APIError | None:
    if account.bind_code_hash is None:
        return Unprocessable(
            "This account has no bind code yet; bind it with the holder's name, or wait for a "
            "bill that prints a bind code (查询密码).",
            code="bind_code_not_issued",
        )
    if verify_bind_code(code, account.bind_code_hash):
        return None
    left = _record_failure(session, household_id, t)
    return Forbidden(
        "The bind code does not match this account; check the 6-digit code printed on the "
        f"latest bill. {left} tries left before binding pauses for 15 minutes.",
        code="bind_code_mismatch",
    )


def bind_account(
    session: Session, household_id: int, utility: str, account_no: str, proof: Proof
) -> dict[str, Any] | Refusal:
    """Bind the account, or a Refusal whose attempt is recorded (commit, then raise it)."""
    proof.check()
    t = now()
    if proof.bind_code is not None:
        # Serialises this household's attempts (PostgreSQL; SQLite writers are serial anyway),
        # so parallel guesses cannot all slip under the limit.
        session.execute(select(Household.id).where(Household.id == household_id).with_for_update())
        paused = _paused(_recent_failures(session, household_id, t), t)
        if paused is not None:
            return Refusal(paused)
    row = session.execute(
        select(UtilityAccount, Biller)
        .join(Biller, UtilityAccount.biller_code == Biller.code)
        .where(UtilityAccount.utility == utility, UtilityAccount.account_no == account_no)
        .with_for_update(of=UtilityAccount)
    ).first()
    if row is None:
        raise NotFound(
            f"No {utility} account with this number is known; check the number on a paper bill.",
            code="account_not_found",
        )
    account, biller = row
    if proof.bind_code is not None:
        refused = _check_code(session, household_id, account, proof.bind_code, t)
        if refused is not None:
            return Refusal(refused)
    elif account.holder_name != (proof.holder_name or "").strip():
        raise Unprocessable(
            "The holder name does not match the account; enter the name printed on the bill.",
            code="holder_name_mismatch",
        )
    if account.household_id is not None:
        raise Conflict(
            "This account is already bound to a household; unbind it there first.",
            code="account_already_bound",
        )
    account.household_id = household_id
    account.bound_at = t
    unpaid = list(
        session.scalars(select(Bill).where(Bill.account_id == account.id, Bill.status == "unpaid"))
    )
    return account_view(account, biller, unpaid)
