"""Taking a payment's money from its funding source, and giving it back: one function each,
dispatching on the source's kind, so each kind's rules sit in one place.

Wallet: checked before the PIN (``require_funds``) and posted wallet → payable(biller) in the
transaction that marks the payment succeeded (``take_funds``), with a shop sale's commission
(gateway.funding.commission) beside it. Mandate: checked against its limits
before the PIN and again at authorize; the bank's debit happens outside the database transaction
(gateway.bank_debits) and ``take_funds`` posts it once the bank has said yes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.db.models import FundingSource, Payment
from gateway.errors import Conflict
from gateway.funding.commission import post_commission, return_commission
from gateway.funding.sources import wallet_account, wallet_currency
from gateway.ledger import InsufficientFunds, Leg, accounts, balance, post
from gateway.ledger.amounts import show
from gateway.mandates import check_limits, queue_reversal


def _short(held: int, needed: int, currency: str) -> Conflict:
    # The numbers ride along so a client can say them in its own words without parsing ours.
    return Conflict(
        f"The wallet holds {show(held, currency)}, this bill needs {show(needed, currency)}: "
        "top up at a shop or choose another way to pay.",
        code="insufficient_funds",
        details={"balance_fen": held, "needed_fen": needed, "currency": currency},
    )


def require_funds(session: Session, source: FundingSource, amount_fen: int, currency: str) -> None:
    """Refuse, before the household enters its PIN, a payment its source cannot cover."""
    if source.kind == "wallet":
        account = wallet_account(session, source.household_id)
        held = wallet_currency(session, account)
        if held != currency:
            raise Conflict(
                f"The wallet holds {held} and this bill is in {currency}: choose another way "
                "to pay.",
                code="currency_mismatch",
            )
        have = balance(session, account)
        if have < amount_fen:
            raise _short(have, amount_fen, currency)
        return
    check_limits(session, source, amount_fen, currency, lock=False)


def take_funds(session: Session, payment: Payment, source: FundingSource) -> None:
    """Move the payment's money to what we owe its biller, in the caller's transaction.

    Raises Conflict ``insufficient_funds`` when the wallet fell below the amount since the
    payment was created; the caller's transaction then records nothing."""
    if source.kind == "wallet":
        account = wallet_account(session, source.household_id)
        try:
            post(
                session,
                kind="payment",
                ref=payment.id,
                currency=payment.currency,
                legs=[Leg(account, accounts.payable(payment.biller_code), payment.amount_fen)],
            )
        except InsufficientFunds as exc:
            raise _short(exc.balance, payment.amount_fen, payment.currency) from None
        post_commission(session, payment)
        return
    # Mandate: called once the bank has said it took the money (gateway.payments
    # .finish_bank_debit); the bank now owes us what we owe the biller.
    post(
        session,
        kind="payment",
        ref=payment.id,
        currency=payment.currency,
        legs=[
            Leg(accounts.BANK_CLEARING, accounts.payable(payment.biller_code), payment.amount_fen)
        ],
    )
    post_commission(session, payment)


def give_back(session: Session, payment: Payment, source: FundingSource) -> None:
    """Return a taken payment's full amount to where it came from, in the caller's transaction.
    Posting twice is a no-op (same kind, ref and legs), so a refund is never paid out twice."""
    if source.kind == "wallet":
        account = wallet_account(session, source.household_id)
        post(
            session,
            kind="refund",
            ref=payment.id,
            currency=payment.currency,
            legs=[Leg(accounts.payable(payment.biller_code), account, payment.amount_fen)],
        )
        return_commission(session, payment)
        return
    # Mandate: the card is credited by the bank's reversal, which the dispatcher sends
    # (gateway.bank_debits.reversal_handler); queued once per payment, like the posting.
    post(
        session,
        kind="refund",
        ref=payment.id,
        currency=payment.currency,
        legs=[
            Leg(accounts.payable(payment.biller_code), accounts.BANK_CLEARING, payment.amount_fen)
        ],
    )
    return_commission(session, payment)
    queue_reversal(session, payment, source)
