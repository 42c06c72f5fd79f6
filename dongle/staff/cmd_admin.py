"""`reset` (wipe a dongle) and `revoke` (at the gateway, for a lost dongle)."""

from __future__ import annotations

import argparse

from rich.console import Console

from dongle.staff import prompt
from dongle.staff.context import Context
from dongle.staff.daemon import translated
from dongle.staff.errors import AlreadyProvisioned, UsageError
from dongle.staff.gateway import DongleRecord
from dongle.staff.log import log
from dongle.staff.provision import mask_account


def run_reset(args: argparse.Namespace, ctx: Context) -> int:
    with translated():
        info = ctx.daemon().info(args.serial)
    serial = info.serial
    if not args.no_gateway_check:
        # Wiping an active dongle would leave it active at the gateway while unusable.
        with ctx.new_gateway() as gateway:
            record = gateway.dongle(serial)
        if record is not None and record.status == "active":
            raise AlreadyProvisioned(
                f"dongle {serial} is active at the gateway for household "
                f"{mask_account(record.household_no)}: nothing was changed; revoke it first "
                f"('tvpay-dongle revoke --serial {serial} --reason ...'), then reset it"
            )
    if not args.force and not prompt.confirm(
        f"Wipe dongle {serial} ({info.state})? Its payment key, certificate, PIN and PUK are "
        "destroyed. Type its serial to confirm:",
        serial,
    ):
        raise UsageError(
            f"not confirmed: dongle {serial} was not wiped (type its serial at the prompt, "
            "or pass --force in scripts)"
        )
    with translated():
        with ctx.daemon().acquire(serial, wait=args.wait):
            ctx.daemon().wipe(serial)
        after = ctx.daemon().info(serial)
    log("reset", serial=serial, state_before=info.state, state=after.state)

    def render(console: Console) -> None:
        console.print(f"[green]Wiped:[/] dongle {serial} is back to '{after.state}'.")

    ctx.out.result({"serial": serial, "state": after.state, "key_rev": after.key_rev}, render)
    return 0


def record_json(record: DongleRecord) -> dict[str, object]:
    return {
        "serial": record.dongle_id,
        "status": record.status,
        "key_rev": record.key_rev,
        "household_no": record.household_no,
        "revoke_reason": record.revoke_reason,
    }


def run_revoke(args: argparse.Namespace, ctx: Context) -> int:
    reason = args.reason.strip()
    if not reason:
        raise UsageError("give a reason, e.g. --reason lost")
    with ctx.new_gateway() as gateway:
        record = gateway.revoke(args.serial, reason)
    log("revoke", serial=record.dongle_id, status=record.status)

    def render(console: Console) -> None:
        console.print(
            f"[green]Revoked:[/] dongle {record.dongle_id} can no longer open sessions or pay "
            f"(reason: {reason})."
        )

    ctx.out.result(record_json(record), render)
    return 0
