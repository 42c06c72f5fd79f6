"""`check`: is the ledger sound? Every problem found is one line a person can act on.

The rules are pure (``find_problems`` over plain rows); ``check`` only reads the rows. They hold:
every transfer is positive, unchanged since posting (its digest) and in its accounts' currency; no
wallet ever went below zero (running balance in posting order), and each wallet's stored balance
is the sum of its transfers; each biller's payable equals what
its payments collected − refunded − what was settled − the shops' commission + the commission
returned; and each payment's state agrees with its postings (money taken ⇔ one payment posting of
its amount, and for a shop's sale one commission posting of the commission fixed on the payment;
refunded ⇔ also one refund posting, and the commission returned)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.db.models import LedgerAccount, LedgerTransfer, Payment
from gateway.ledger import accounts
from gateway.ledger.rules import digest

TAKEN = frozenset({"succeeded", "credited"})  # money taken and kept
REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class PaymentRow:
    id: str
    status: str
    biller_code: str
    amount_fen: int
    commission_fen: int = 0  # a shop's sale: the commission fixed when it was created


def _changed(t: LedgerTransfer) -> bool:
    return t.digest != digest(
        txn_id=t.txn_id,
        kind=t.kind,
        ref=t.ref,
        debit=t.debit_account,
        credit=t.credit_account,
        amount_fen=t.amount_fen,
        currency=t.currency,
        created_at=t.created_at,
    )


# The posting kinds a payment makes, in the order ``_expected`` gives their amounts.
PAYMENT_KINDS = ("payment", "refund", "commission", "commission_back")


def _expected(p: PaymentRow) -> tuple[int, int, int, int]:
    """(payment, refund, commission, commission returned) in fen that the payment's state
    calls for."""
    if p.status in TAKEN:
        return p.amount_fen, 0, p.commission_fen, 0
    if p.status == REFUNDED:
        return p.amount_fen, p.amount_fen, p.commission_fen, p.commission_fen
    return 0, 0, 0, 0  # not taken (yet), or failed: nothing moved


def find_problems(
    transfers: Iterable[LedgerTransfer],
    currencies: Mapping[str, str],
    payments: Iterable[PaymentRow],
    stored: Mapping[str, int | None],
) -> list[str]:
    """The problems in ``transfers`` (in posting order), given each account's currency, the
    payments that pay through the ledger and each wallet's stored balance. Empty when the
    ledger is sound."""
    problems: list[str] = []
    running: dict[str, int] = defaultdict(int)
    below_zero: set[str] = set()
    payable: dict[str, int] = defaultdict(int)
    settled: dict[str, int] = defaultdict(int)
    posted: dict[tuple[str, str], int] = defaultdict(int)  # (kind, ref) → fen
    for t in transfers:
        name = f"transfer #{t.id} ({t.kind} {t.ref})"
        if _changed(t):
            problems.append(f"{name} was changed after it was posted (its digest differs)")
        if t.amount_fen <= 0:
            problems.append(f"{name} moves {t.amount_fen} fen; transfers move positive amounts")
        for code in (t.debit_account, t.credit_account):
            if currencies.get(code) != t.currency:
                problems.append(
                    f"{name} is in {t.currency} but {code} holds {currencies.get(code)}"
                )
        running[t.debit_account] -= t.amount_fen
        running[t.credit_account] += t.amount_fen
        debit = t.debit_account
        if accounts.is_wallet(debit) and running[debit] < 0 and debit not in below_zero:
            below_zero.add(debit)
            problems.append(f"{debit} went below zero ({running[debit]} fen) at {name}")
        if t.kind == "settlement" and accounts.is_payable(debit):
            settled[debit] += t.amount_fen
        posted[(t.kind, t.ref)] += t.amount_fen
        for code in (t.debit_account, t.credit_account):
            if accounts.is_payable(code):
                payable[code] = running[code]
    for code, figure in sorted(stored.items()):
        if figure != running.get(code, 0):
            problems.append(
                f"{code} records a balance of {figure} fen but its transfers sum to "
                f"{running.get(code, 0)} fen"
            )
    problems += _payment_problems(payments, posted, payable, settled)
    return problems


def _payment_problems(
    payments: Iterable[PaymentRow],
    posted: Mapping[tuple[str, str], int],
    payable: Mapping[str, int],
    settled: Mapping[str, int],
) -> list[str]:
    problems: list[str] = []
    # Per payable: collected, refunded, commission, commission returned (PAYMENT_KINDS).
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    known: set[str] = set()
    for p in payments:
        known.add(p.id)
        want = _expected(p)
        got = tuple(posted.get((kind, p.id), 0) for kind in PAYMENT_KINDS)
        if got[:2] != want[:2]:
            problems.append(
                f"payment {p.id} is {p.status} ({p.amount_fen} fen) but its postings say "
                f"{got[0]} fen paid and {got[1]} fen refunded"
            )
        if got[2:] != want[2:]:
            problems.append(
                f"payment {p.id} is {p.status} with a commission of {p.commission_fen} fen but "
                f"its postings say {got[2]} fen commission and {got[3]} fen returned"
            )
        code = accounts.payable(p.biller_code)
        sums[code] = [a + b for a, b in zip(sums[code], want, strict=True)]
    for kind, ref in posted:
        if kind in PAYMENT_KINDS and ref not in known:
            problems.append(f"{kind} posting {ref} names no payment paid through the ledger")
    for code in sorted(set(payable) | set(sums)):
        collected, refunded, commission, returned = sums[code]
        want = collected - refunded - settled.get(code, 0) - commission + returned
        if payable.get(code, 0) != want:
            problems.append(
                f"{code} holds {payable.get(code, 0)} fen but its payments say {want} "
                f"(collected {collected} − refunded {refunded} − settled "
                f"{settled.get(code, 0)} − commission {commission} + commission returned "
                f"{returned})"
            )
    return problems


def check(session: Session) -> list[str]:
    """Read the ledger and the payments paid through it; return the problems (empty = sound)."""
    currencies = dict(session.execute(select(LedgerAccount.code, LedgerAccount.currency)).all())
    transfers = session.scalars(select(LedgerTransfer).order_by(LedgerTransfer.id))
    payments = [
        PaymentRow(r.id, r.status, r.biller_code, r.amount_fen, r.commission_fen or 0)
        for r in session.execute(
            select(
                Payment.id,
                Payment.status,
                Payment.biller_code,
                Payment.amount_fen,
                Payment.commission_fen,
            ).where(Payment.funding_source_id.is_not(None))
        )
    ]
    stored = dict(
        session.execute(
            select(LedgerAccount.code, LedgerAccount.balance_fen).where(
                LedgerAccount.kind == "wallet"
            )
        ).all()
    )
    return find_problems(transfers, currencies, payments, stored)


def transfer_count(session: Session) -> int:
    """How many transfers the ledger holds (for the "ledger sound" line)."""
    return int(session.scalar(select(func.count()).select_from(LedgerTransfer)) or 0)
