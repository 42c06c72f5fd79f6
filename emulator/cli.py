"""``tvpay-emulator``: one command, one subcommand group per emulator part.

Each ``emulator.<part>.commands`` module that exists defines ``register(subparsers)``, adding its
subcommands with ``set_defaults(run=function)``; ``run(args) -> int`` is the exit status. Adding a
group is adding such a module: nothing here changes.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import pkgutil
import sys
from collections.abc import Sequence

import emulator
from protocol import logfmt


def command_modules() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(emulator.__path__):
        name = f"emulator.{info.name}.commands"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            names.append(name)
    return sorted(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tvpay-emulator", description="The TVPay emulator: virtual dongles, box and stack."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug events")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in command_modules():
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logfmt.configure(logging.DEBUG if args.verbose else logging.INFO)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
