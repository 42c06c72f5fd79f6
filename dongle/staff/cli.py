"""`tvpay-dongle`: subcommands, global options, and one place that turns errors into exit codes.

Global options work before or after the subcommand (``tvpay-dongle --json list`` and
``tvpay-dongle list --json``). See docs/staff-guide.md for every command and the exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from dongle import doctor
from dongle.client import default_socket_path
from dongle.staff import cmd_admin, cmd_batch, cmd_device, cmd_pin, cmd_provision
from dongle.staff.config import load_config
from dongle.staff.context import Context
from dongle.staff.errors import Interrupted, StaffError, UsageError
from dongle.staff.output import Output
from dongle.staff.provision import ROLES
from protocol import logfmt

Command = Callable[[argparse.Namespace, Context], int]
PROG = "tvpay-dongle"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors get our output and exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _global_options(defaults: bool) -> argparse.ArgumentParser:
    """Global options; on subcommands they default to SUPPRESS so they don't reset the main ones."""
    parent = _Parser(add_help=False)
    default = None if defaults else argparse.SUPPRESS
    flag_default = False if defaults else argparse.SUPPRESS
    group = parent.add_argument_group("global options")
    group.add_argument(
        "--json",
        action="store_true",
        default=flag_default,
        help="print one JSON object (results and errors) for scripts",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=flag_default,
        help="log only warnings and errors to stderr",
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="settings file (default /etc/tvpay/staff.toml, ~/.config/tvpay/staff.toml)",
    )
    group.add_argument("--gateway", metavar="URL", default=default, help="gateway base URL")
    group.add_argument(
        "--ca-file",
        metavar="PEM",
        default=default,
        help="CA certificate(s) to trust for the gateway's TLS",
    )
    group.add_argument(
        "--token-file",
        metavar="FILE",
        default=default,
        help="0600 file with the staff token (or set TVPAY_STAFF_TOKEN)",
    )
    group.add_argument("--socket", metavar="PATH", default=default, help="dongle daemon socket")
    group.add_argument(
        "--manufacturer-ca",
        metavar="PEM",
        action="append",
        default=default,
        help="trusted manufacturer CA certificate (repeatable)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(defaults=False)
    parser = _Parser(
        prog=PROG,
        parents=[_global_options(defaults=True)],
        description="Check, provision, unblock, reset and revoke TVPay payment dongles.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 dongle, 4 gateway, 5 daemon, "
        "130 interrupted. See docs/staff-guide.md.",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def command(name: str, run: Command, help_text: str, **kw: object) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text, **kw)
        p.set_defaults(run=run)
        return p

    def serial_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--serial", metavar="S", help="which dongle (default: the only one plugged in)"
        )

    def wait_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="wait this long for a dongle another program holds (default 0)",
        )

    command("list", cmd_device.run_list, "list the dongles plugged in")
    serial_option(command("info", cmd_device.run_info, "show a dongle's state and certificate"))
    serial_option(
        command(
            "verify",
            cmd_device.run_verify,
            "check a dongle is genuine (attestation against the manufacturer CA)",
        )
    )

    p = command(
        "provision",
        cmd_provision.run_provision,
        "make a dongle a household's payment key (resumable: rerun after any failure)",
    )
    p.add_argument("--account", required=True, metavar="户号", help="the household number")
    p.add_argument("--pin", help="the household's initial PIN (default: prompt, typed twice)")
    p.add_argument(
        "--role",
        choices=ROLES,
        default="home",
        help="home: pays the household's bills (default); shop: a shop's (代售点) dongle",
    )
    serial_option(p)
    wait_option(p)

    p = command("batch", cmd_batch.run_batch, "provision every dongle on the hub from a CSV file")
    p.add_argument(
        "file", metavar="FILE.csv", help="rows 'serial,account[,pin][,role]' with that header"
    )
    p.add_argument("--jobs", type=int, metavar="N", help="dongles provisioned at once (default 8)")
    p.add_argument(
        "--out",
        metavar="RESULT.csv",
        help="result file, 0600, never overwritten (default FILE.result-<time>.csv)",
    )
    wait_option(p)

    pin = sub.add_parser("pin", help="change or unblock a dongle's PIN")
    pin_sub = pin.add_subparsers(
        dest="pin_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    for name, run, text in (
        ("change", cmd_pin.run_change, "change the PIN (asks for the current and the new PIN)"),
        ("unblock", cmd_pin.run_unblock, "set a new PIN with the PUK (for a blocked PIN)"),
    ):
        action = pin_sub.add_parser(name, parents=[common], help=text, description=text)
        action.set_defaults(run=run)
        serial_option(action)

    p = command(
        "reset", cmd_admin.run_reset, "wipe a dongle back to factory state (asks to confirm)"
    )
    serial_option(p)
    wait_option(p)
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--no-gateway-check",
        action="store_true",
        help="skip checking the gateway that the dongle is not active (offline bench)",
    )

    p = command(
        "revoke", cmd_admin.run_revoke, "revoke a lost dongle at the gateway (it can no longer pay)"
    )
    p.add_argument("--serial", required=True, metavar="S")
    p.add_argument("--reason", required=True, help="e.g. lost, stolen, broken")

    p = command("doctor", _doctor, "diagnose the daemon, its access rights and the dongles")
    doctor.add_options(p, socket=False)  # --socket is a global option
    return parser


def _doctor(args: argparse.Namespace, ctx: Context) -> int:
    args.socket = ctx.config.socket_path or default_socket_path()
    return doctor.report(args)  # its own text report: doctor has no JSON form


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Output(json_mode="--json" in argv)
    try:
        args = build_parser().parse_args(argv)
        out = Output(json_mode=args.json)
        logfmt.configure(logging.WARNING if args.quiet else logging.INFO)
        config = load_config(
            args.config,
            flags={
                "gateway_url": args.gateway,
                "gateway_ca_file": args.ca_file,
                "token_file": args.token_file,
                "socket_path": args.socket,
                "manufacturer_cas": args.manufacturer_ca,
            },
        )
        ctx = Context(config, out)
        try:
            return args.run(args, ctx)
        finally:
            ctx.close()
    except KeyboardInterrupt:
        error: StaffError = Interrupted("interrupted: nothing more was done; rerun when ready")
    except StaffError as exc:
        error = exc
    out.failure(error)
    return error.exit_code


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
