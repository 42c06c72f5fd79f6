"""``tvpay-emulator bank serve`` and ``python -m emulator.bank serve``: run the bank simulator.

Prints ``bank listening on http://HOST:PORT`` once the socket is bound (port 0 picks a free one),
then serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from emulator.bank.api import create_app
from emulator.bank.errors import BankError
from emulator.bank.faults import Faults
from emulator.bank.seed import load_seed
from emulator.bank.store import BankStore


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:0")
    return host, int(port)


def add_serve(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the bank simulator")
    serve.add_argument("--state-dir", type=Path, required=True, help="holds bank.db")
    serve.add_argument("--listen", type=_listen, default=("127.0.0.1", 0), help="HOST:PORT")
    serve.add_argument("--seed", type=Path, help="JSON file of card accounts to create")
    serve.set_defaults(run=serve_bank)


def register(subparsers: Any) -> None:
    bank = subparsers.add_parser("bank", help="the bank simulator (direct debits)")
    add_serve(bank.add_subparsers(dest="bank_command", required=True, metavar="COMMAND"))


def serve_bank(args: argparse.Namespace) -> int:
    try:
        store = BankStore(args.state_dir / "bank.db")
        if args.seed is not None:
            load_seed(store, args.seed)
        sock = socket.create_server(args.listen)
    except BankError as exc:
        print(f"bank: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        host, port = args.listen
        print(f"bank: cannot listen on {host}:{port} ({exc.strerror})", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    # The socket already listens: a client that reads this line can connect at once.
    print(f"bank listening on http://{host}:{port}", flush=True)
    config = uvicorn.Config(
        create_app(store, Faults()),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.bank")
    add_serve(parser.add_subparsers(dest="bank_command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return int(args.run(args))
