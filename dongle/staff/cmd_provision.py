"""`provision`: one dongle for one household, resumable (dongle.staff.provision)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape

from dongle.staff import prompt
from dongle.staff.context import Context
from dongle.staff.errors import UsageError
from dongle.staff.provision import (
    Order,
    Outcome,
    ProvisionFailed,
    Provisioning,
    fail_after_from_env,
)
from protocol.errors import PinPolicyError
from protocol.pin import check_pin

PUK_NOTE = "give it to the household with the dongle: it is shown only this once"


def checked_pin(pin: str) -> str:
    try:
        check_pin(pin)
    except PinPolicyError as exc:
        raise UsageError(f"{exc}: choose another PIN with the household") from None
    return pin


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "serial": outcome.serial,
        "account": outcome.account,
        "role": outcome.role,
        "status": "active",
        "key_rev": outcome.key_rev,
        "puk": outcome.puk,
        "resumed": outcome.resumed,
        "restarted": outcome.restarted,
        "manufacturer": outcome.manufacturer,
    }


def failure_json(error: ProvisionFailed) -> dict[str, Any]:
    return {"serial": error.serial, "step": str(error.step), "puk": error.puk}


def locked_puk_hint(puk: str) -> str:
    return (
        f"The dongle may already be locked with the household's PIN and this PUK: [bold]{puk}[/] "
        f"({PUK_NOTE}). Rerun the same command to finish the activation."
    )


def run_provision(args: argparse.Namespace, ctx: Context) -> int:
    account = ctx.config.check_account(args.account)
    fail_after = fail_after_from_env()
    pin = checked_pin(args.pin if args.pin is not None else prompt.new_secret("household PIN"))
    cas = ctx.cas()
    order = Order(account=account, pin=pin, serial=args.serial, role=args.role)
    with ctx.new_gateway() as gateway:
        try:
            outcome = Provisioning(
                ctx.daemon(), gateway, cas, order, fail_after=fail_after, lease_wait=args.wait
            ).run()
        except ProvisionFailed as exc:
            hint = locked_puk_hint(exc.puk) if exc.puk else ""
            ctx.out.failure(exc, failure_json(exc), hint)
            return exc.exit_code

    def render(console: Console) -> None:
        how = " (resumed: only the activation was left)" if outcome.resumed else ""
        console.print(
            f"[green]Provisioned:[/] dongle {outcome.serial} is active for "
            f"{'shop' if outcome.role == 'shop' else 'household'} {escape(outcome.account)}, "
            f"key rev {outcome.key_rev}{how}."
        )
        if outcome.puk:
            console.print(f"PUK: [bold]{outcome.puk}[/] — {PUK_NOTE}.")
        else:
            console.print("PUK: set and shown by the earlier, interrupted run.")

    ctx.out.result(outcome_json(outcome), render)
    return 0
