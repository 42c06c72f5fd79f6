"""`pin change` and `pin unblock`: the household's PIN, encrypted in this process for the dongle.

The PIN and PUK never reach the daemon in clear (dongle.pin_client runs the key agreement here).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from dongle import pin_client
from dongle.staff import prompt
from dongle.staff.cmd_provision import checked_pin
from dongle.staff.context import Context
from dongle.staff.daemon import translated
from dongle.staff.errors import DongleProblem
from protocol.errors import DonglePinInvalid, DonglePukInvalid


def run_change(args: argparse.Namespace, ctx: Context) -> int:
    with translated():
        serial = ctx.daemon().info(args.serial).serial
    old = prompt.secret("current PIN")
    new = checked_pin(prompt.new_secret("new PIN"))
    try:
        with translated(), ctx.daemon().acquire(serial):  # no other PIN command in between
            pin_client.change_pin(ctx.daemon(), old, new, serial)
    except DongleProblem as exc:
        cause = exc.__cause__
        if isinstance(cause, DonglePinInvalid) and not isinstance(cause, DonglePukInvalid):
            raise DongleProblem(
                f"wrong current PIN for dongle {serial}: {cause.retries} tries left before it "
                "blocks; nothing was changed"
            ) from cause
        raise

    def render(console: Console) -> None:
        console.print(f"[green]PIN changed[/] on dongle {serial}.")

    ctx.out.result({"serial": serial, "pin_changed": True}, render)
    return 0


def run_unblock(args: argparse.Namespace, ctx: Context) -> int:
    with translated():
        serial = ctx.daemon().info(args.serial).serial
    puk = prompt.secret("PUK")
    new = checked_pin(prompt.new_secret("new PIN"))
    try:
        with translated(), ctx.daemon().acquire(serial):
            pin_client.unblock_pin(ctx.daemon(), puk, new, serial)
    except DongleProblem as exc:
        cause = exc.__cause__
        if isinstance(cause, DonglePukInvalid):
            raise DongleProblem(
                f"wrong PUK for dongle {serial}: {cause.retries} tries left before the dongle "
                "wipes itself; check the PUK on the household's letter. Nothing was changed"
            ) from cause
        raise

    def render(console: Console) -> None:
        console.print(f"[green]PIN unblocked[/] on dongle {serial}: the new PIN is set.")

    ctx.out.result({"serial": serial, "pin_unblocked": True}, render)
    return 0
