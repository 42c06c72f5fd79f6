"""``python -m emulator.utility``: ``serve`` runs the simulator; ``state``, ``faults``, ``clear``,
``statement``, ``meter`` and ``close`` talk to a running one (docs/emulator.md, "The utility
simulator")."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import requests
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from emulator.utility.app import create_app
from emulator.utility.clock import Clock, ClockFileError
from emulator.utility.faults import Faults
from emulator.utility.seed import apply_seed, load_seed
from emulator.utility.store import UtilityStore


class UtilityCliError(Exception):
    """A problem the person running the command can fix; printed as one line."""


def _public_key(pem: bytes, source: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise UtilityCliError(f"{source} is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UtilityCliError(f"{source} is not an EC (P-256) public key")
    return key


def _gateway_key(args: argparse.Namespace) -> ec.EllipticCurvePublicKey:
    if args.gateway_key:
        try:
            return _public_key(Path(args.gateway_key).read_bytes(), args.gateway_key)
        except OSError as exc:
            raise UtilityCliError(f"cannot read {args.gateway_key}: {exc.strerror}") from None
    url = args.gateway.rstrip("/") + "/api/v1/gateway"
    try:
        response = requests.get(url, timeout=10, verify=args.ca_file or True)
        response.raise_for_status()
        pem = response.json()["receipt_public_key_pem"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise UtilityCliError(
            f"cannot fetch the gateway's receipt key from {url} ({type(exc).__name__}); "
            "check that the gateway runs, or pass --gateway-key PEM"
        ) from None
    return _public_key(str(pem).encode(), url)


def _listen(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UtilityCliError(f"--listen takes HOST:PORT, not {address!r}")
    try:
        return socket.create_server((host, int(port)))
    except OSError as exc:
        raise UtilityCliError(f"cannot listen on {address}: {exc.strerror}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    key = _gateway_key(args)
    store = UtilityStore(Path(args.state_dir))
    clock = Clock(Path(args.clock_file) if args.clock_file else None)
    if args.seed:
        try:
            now = clock.now()
        except ClockFileError as exc:
            raise UtilityCliError(str(exc)) from None
        try:
            seed = load_seed(Path(args.seed).read_text(encoding="utf-8"))
            apply_seed(store, seed, now)
        except (OSError, ValueError, ValidationError) as exc:
            raise UtilityCliError(f"seed file {args.seed} is unusable: {exc}") from None
    sock = _listen(args.listen)
    host, port = sock.getsockname()[:2]
    app = create_app(store, Faults(), clock, key)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    print(f"utility listening on http://{host}:{port}", flush=True)
    server.run(sockets=[sock])
    store.close()
    return 0


def _call(method: str, url: str, body: object | None = None) -> int:
    try:
        response = requests.request(method, url, json=body, timeout=10)
    except requests.RequestException as exc:
        raise UtilityCliError(f"cannot reach the utility at {url} ({type(exc).__name__})") from None
    print(response.text)
    return 0 if response.ok else 1


def cmd_state(args: argparse.Namespace) -> int:
    return _call("GET", args.url.rstrip("/") + "/control/state")


def cmd_faults(args: argparse.Namespace) -> int:
    try:
        body = json.loads(args.json)
    except ValueError:
        raise UtilityCliError("faults takes a JSON object, e.g. '{\"down\": true}'") from None
    return _call("POST", args.url.rstrip("/") + "/control/faults", body)


def cmd_clear(args: argparse.Namespace) -> int:
    return _call("DELETE", args.url.rstrip("/") + "/control/faults")


def cmd_statement(args: argparse.Namespace) -> int:
    return _call("GET", f"{args.url.rstrip('/')}/statements/{args.date}.csv")


def cmd_meter(args: argparse.Namespace) -> int:
    return _call("GET", f"{args.url.rstrip('/')}/meters/{args.account_no}")


def cmd_close(args: argparse.Namespace) -> int:
    return _call("POST", f"{args.url.rstrip('/')}/control/accounts/{args.account_no}/close")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator.utility", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the simulator")
    p.add_argument("--state-dir", required=True, help="directory of utility.db")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT, port 0 picks a free one")
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--gateway-key", help="PEM file of the gateway's receipt public key")
    key.add_argument("--gateway", help="gateway base URL to fetch that key from")
    p.add_argument("--ca-file", help="CA certificate (PEM) for an https --gateway")
    p.add_argument("--clock-file", help="file holding the simulated Unix time (default: real)")
    p.add_argument(
        "--seed", help='JSON {"accounts": [...], "bills": [...], "prepaid": [...]} to load at start'
    )
    p.set_defaults(func=cmd_serve)
    for name, func, helptext in (
        ("state", cmd_state, "show faults and write-off counts"),
        ("clear", cmd_clear, "clear all faults, releasing held requests"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("--url", required=True)
        q.set_defaults(func=func)
    q = sub.add_parser("faults", help="set faults, e.g. '{\"down\": true}'")
    q.add_argument("--url", required=True)
    q.add_argument("json")
    q.set_defaults(func=cmd_faults)
    q = sub.add_parser("statement", help="print the CSV statement of a day")
    q.add_argument("--url", required=True)
    q.add_argument("date", help="YYYY-MM-DD")
    q.set_defaults(func=cmd_statement)
    for name, func, helptext in (
        ("meter", cmd_meter, "print a prepaid account's balance and last 30 days"),
        ("close", cmd_close, "close an account: its next payments are rejected account_closed"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("--url", required=True)
        q.add_argument("account_no")
        q.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UtilityCliError as exc:
        print(f"utility: {exc}", file=sys.stderr)
        return 2
