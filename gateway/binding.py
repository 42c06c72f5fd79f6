"""Binding a utility account to a household: proof by the holder's name or by the bind code
printed on the bill. Every attempt is audited and every failed proof counted by the limiter
(gateway.ratelimit), so neither names nor codes can be guessed.

A failed proof must stay counted and audited although the request fails, so ``bind_account``
returns a ``Refusal`` instead of raising inside the transaction: the caller commits, then raises it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import audit, ratelimit
from gateway.bind_codes import verify_bind_code
from gateway.clock import now
from gateway.db.models import Bill, Biller, Household, UtilityAccount
from gateway.errors import APIError, Conflict, Forbidden, NotFound, Unprocessable
from gateway.masking import mask_account
from gateway.views import account_view


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


def _tries_left(left: int) -> str:
    return f"{left} tries left before binding pauses for {ratelimit.WINDOW_SECONDS // 60} minutes."


def _check_proof(
    session: Session, household: Household, account: UtilityAccount, proof: Proof, t: int
) -> None:
    """Raise when the proof is wrong, after counting the failure."""
    if proof.bind_code is not None:
        if account.bind_code_hash is None:
            raise Unprocessable(
                "This account has no bind code yet; bind it with the holder's name, or wait for "
                "a bill that prints a bind code (查询密码).",
                code="bind_code_not_issued",
            )
        if verify_bind_code(proof.bind_code, account.bind_code_hash):
            return
        left = ratelimit.record_failure(session, household.id, account.id, t)
        raise Forbidden(
            "The bind code does not match this account; check the 6-digit code printed on the "
            f"latest bill. {_tries_left(left)}",
            code="bind_code_mismatch",
        )
    if account.holder_name != (proof.holder_name or "").strip():
        left = ratelimit.record_failure(session, household.id, account.id, t)
        raise Unprocessable(
            "The holder name does not match the account; enter the name printed on the bill. "
            + _tries_left(left),
            code="holder_name_mismatch",
        )


def _find_account(session: Session, utility: str, account_no: str) -> tuple[UtilityAccount, Biller]:
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
    return account, biller


def _bind(
    session: Session, household: Household, account: UtilityAccount, proof: Proof, t: int
) -> None:
    # A name cannot be told from a lucky guess, except from the household the telecom registered
    # under that very name.
    owner_proof = proof.bind_code is not None or household.name == account.holder_name
    paused = ratelimit.account_pause(session, household.id, account.id, owner_proof, t)
    if paused is not None:
        raise paused
    _check_proof(session, household, account, proof, t)
    if account.household_id is not None:
        raise Conflict(
            "This account is already bound to a household; unbind it there first.",
            code="account_already_bound",
        )
    account.household_id = household.id
    account.bound_at = t


def bind_account(
    session: Session, household_id: int, utility: str, account_no: str, proof: Proof
) -> dict[str, Any] | Refusal:
    """Bind the account, or a Refusal whose attempt is recorded (commit, then raise it)."""
    proof.check()
    t = now()
    # The household's row lock serialises its attempts, the account's (in _find_account) every
    # household's attempts at that account: parallel guesses cannot slip under a limit.
    household = session.get(Household, household_id, with_for_update=True)
    assert household is not None  # the device session names an existing household
    target = f"{utility}:{mask_account(account_no)}"  # never the full number: it is logged
    try:
        paused = ratelimit.household_pause(session, household.id, t)
        if paused is not None:
            raise paused
        try:
            account, biller = _find_account(session, utility, account_no)
        except NotFound as unknown:
            left = ratelimit.record_failure(session, household.id, None, t)
            unknown.message = f"{unknown.message} {_tries_left(left)}"
            raise
        target = account.id
        _bind(session, household, account, proof, t)
    except APIError as error:
        _audit(session, household, target, proof, error.code)
        return Refusal(error)
    _audit(session, household, target, proof, "bound")
    unpaid = list(
        session.scalars(
            select(Bill).where(
                Bill.account_id == account.id, Bill.status == "unpaid", Bill.kind == "bill"
            )
        )
    )
    return account_view(account, biller, unpaid)


def _audit(session: Session, household: Household, target: str, proof: Proof, outcome: str) -> None:
    # Never the name or code typed: the outcome says whether it was right.
    audit.record(
        session,
        f"household:{household.household_no}",
        "account_bind",
        target,
        proof="bind_code" if proof.bind_code is not None else "holder_name",
        outcome=outcome,
    )
