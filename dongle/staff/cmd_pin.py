"""`pin change` and `pin unblock`: the household's PIN, encrypted in this process for the dongle.

The PIN and PUK never reach the daemon in clear (dongle.pin_client runs the key agreement here),
and only go to a key agreement signed by the payment key that the dongle's factory attestation
vouches for.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console

from dongle import pin_client
from dongle.client import DaemonClient
from dongle.staff import prompt
from dongle.staff.attestation import attested_key
from dongle.staff.cmd_provision import checked_pin
from dongle.staff.context import Context
from dongle.staff.daemon import translated
from dongle.staff.errors import DongleProblem
from protocol.errors import DonglePinInvalid, DonglePukInvalid
from protocol.pin import DongleKey


def run_change(args: argparse.Namespace, ctx: Context) -> int:
    return _run(
        args,
        ctx,
        secret="current PIN",
        call=pin_client.change_pin,
        refused=DonglePinInvalid,
        wrong="wrong current PIN for dongle {serial}: {retries} tries left before it blocks; "
        "nothing was changed",
        result="pin_changed",
        done="[green]PIN changed[/] on dongle {serial}.",
    )


def run_unblock(args: argparse.Namespace, ctx: Context) -> int:
    return _run(
        args,
        ctx,
        secret="PUK",
        call=pin_client.unblock_pin,
        refused=DonglePukInvalid,
        wrong="wrong PUK for dongle {serial}: {retries} tries left before the dongle wipes "
        "itself; check the PUK on the household's letter. Nothing was changed",
        result="pin_unblocked",
        done="[green]PIN unblocked[/] on dongle {serial}: the new PIN is set.",
    )


def _run(
    args: argparse.Namespace,
    ctx: Context,
    *,
    secret: str,
    call: Callable[[DaemonClient, str, str, DongleKey], None],
    refused: type[DonglePinInvalid],
    wrong: str,
    result: str,
    done: str,
) -> int:
    """Ask for ``secret`` and a new PIN, run ``call`` holding the dongle; the dongle refusing
    the secret (exactly ``refused``) becomes the ``wrong`` sentence with the tries left."""
    with translated():
        serial = ctx.daemon().info(args.serial).serial
    cas = ctx.cas()
    old = prompt.secret(secret)
    new = checked_pin(prompt.new_secret("new PIN"))
    try:
        with translated(), ctx.daemon().acquire(serial):  # no other PIN command in between
            call(ctx.daemon(), old, new, attested_key(ctx.daemon(), serial, cas))
    except DongleProblem as exc:
        cause = exc.__cause__
        if isinstance(cause, DonglePinInvalid) and type(cause) is refused:
            raise DongleProblem(wrong.format(serial=serial, retries=cause.retries)) from cause
        raise

    def render(console: Console) -> None:
        console.print(done.format(serial=serial))

    ctx.out.result({"serial": serial, result: True}, render)
    return 0
