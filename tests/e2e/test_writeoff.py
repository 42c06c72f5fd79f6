"""Write-off at the utility in the whole box: the stack's dispatcher sends each bill paid on the
TV to the utility simulator; the payment becomes credited, or refunded when the utility refuses."""

from __future__ import annotations

import requests

from tests.e2e.flows import pay
from tests.e2e.stack import RunningStack, unpaid_account, wait_until


def _latest_payment(stack: RunningStack, account: str) -> tuple[str, str, str | None]:
    with stack.db() as db:
        row = db.execute(
            "SELECT p.id, p.status, p.utility_ref FROM payments p JOIN bills b ON p.bill_id = b.id"
            " WHERE b.account_id = ? AND p.succeeded_at IS NOT NULL"
            " ORDER BY p.succeeded_at DESC, p.id DESC LIMIT 1",
            (account,),
        ).fetchone()
    assert row is not None, f"no payment for account {account}"
    return row[0], row[1], row[2]


def test_refused_then_paid_again_and_credited(stack: RunningStack) -> None:
    utility = stack.where["utility"]["url"]
    assert utility, "the stack runs no utility simulator"
    account = unpaid_account(stack)
    # A refusal that leaves the bill payable (account_closed would close the account instead).
    fault = {"reject": {"count": 1, "reason": "amount_mismatch"}}
    requests.post(utility + "/control/faults", json=fault, timeout=10).raise_for_status()
    try:
        pay(stack.client, account, stack.pin)
        wait_until(
            lambda: _latest_payment(stack, account)[1] == "refunded",
            30,
            "the refused payment to be refunded",
            show=lambda: _latest_payment(stack, account),
        )
    finally:
        requests.delete(utility + "/control/faults", timeout=10).raise_for_status()
    refunded = _latest_payment(stack, account)[0]
    pay(stack.client, account, stack.pin)  # the bill is payable again
    wait_until(
        lambda: (
            _latest_payment(stack, account)[0] != refunded
            and _latest_payment(stack, account)[1] == "credited"
        ),
        30,
        "the second payment to be credited",
        show=lambda: _latest_payment(stack, account),
    )
    payment_id, _status, ref = _latest_payment(stack, account)
    said = requests.get(f"{utility}/writeoffs/{payment_id}", timeout=10).json()
    assert said == {"payment_id": payment_id, "status": "credited", "utility_ref": ref}
