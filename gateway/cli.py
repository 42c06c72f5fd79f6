"""``tvpay-gateway``: initialise, serve, manage staff tokens, import bills, make demo data and
verify receipts. See docs/gateway.md §2."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import requests
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from gateway import cli_bank, cli_money, cli_prepaid, cli_shop
from gateway import staff as staff_service
from gateway.bills_import import import_rows, read_file
from gateway.config import GatewayConfig, load_config, write_config
from gateway.context import build_context
from gateway.db.engine import Database, make_engine
from gateway.db.migrate import upgrade
from gateway.demo import create_demo_data
from gateway.dispatch.command import add_parsers as add_dispatch_parsers
from gateway.errors import (
    APIError,
    ConfigError,
    DatabaseUnreachable,
    GatewayError,
    ServiceUnavailable,
    StateDirError,
)
from gateway.keys import ensure_keys
from gateway.preflight import check_state_dir, database_unreachable, masked_url
from gateway.receipts import ReceiptError, load_public_key_pem, verify_qr
from gateway.reconcile import command as reconcile_command
from protocol import logfmt

log = logging.getLogger("tvpay.gateway")

# Exit statuses (docs/gateway.md §2). The sysexits codes let a service manager tell a broken
# setup (not worth restarting) from a crash.
EXIT_CONFIG = 2  # usage or configuration error, as argparse reports its own
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the database cannot be reached
EXIT_CANTCREAT = 73  # EX_CANTCREAT: the state directory cannot be created, read or written


def _database(config: GatewayConfig) -> Database:
    engine = make_engine(config.effective_database_url, pool_size=2)
    upgrade(engine)
    return Database(engine)


def cmd_init(args: argparse.Namespace, config: GatewayConfig) -> int:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.state_dir.chmod(0o700)
    cas = list(config.manufacturer_ca)
    for path in args.manufacturer_ca or []:
        resolved = Path(path).resolve()
        if not resolved.is_file():
            raise GatewayError(f"manufacturer CA file {resolved} does not exist")
        if resolved not in cas:
            cas.append(resolved)
    config = replace(config, manufacturer_ca=tuple(cas))
    if args.gateway_id:
        config = replace(config, gateway_id=args.gateway_id)
    ensure_keys(config.state_dir, config.gateway_id)
    build_context(config)  # migrates and proves that keys and CA files load
    path = write_config(config)
    print(f"gateway initialised: state {config.state_dir}, config {path}")
    if not config.manufacturer_ca:
        print(
            "warning: no manufacturer CA configured; dongles cannot be registered until "
            "'tvpay-gateway init --manufacturer-ca PATH'",
            file=sys.stderr,
        )
    return 0


def cmd_serve(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.server import serve

    return serve(config, args.host, args.port, args.tls_cert, args.tls_key, args.workers)


def cmd_staff(args: argparse.Namespace, config: GatewayConfig) -> int:
    db = _database(config)
    if args.staff_command == "add":
        token = db.write(lambda s: staff_service.add_staff(s, args.name))
        print(token)
        print(f"staff token for {args.name}: shown once, store it safely", file=sys.stderr)
    elif args.staff_command == "revoke":
        db.write(lambda s: staff_service.revoke_staff(s, args.name))
        print(f"staff {args.name} revoked")
    else:
        for member in db.read(staff_service.list_staff):
            state = "revoked" if member.revoked_at else "active"
            print(f"{member.name}\t{state}")
    return 0


def cmd_bills_import(args: argparse.Namespace, config: GatewayConfig) -> int:
    rows = read_file(Path(args.file), args.format)
    db = _database(config)
    added = db.write(lambda s: import_rows(s, rows, Path(args.file).name))
    print(f"imported {len(rows)} rows: {added} new bills, {len(rows) - added} already present")
    return 0


def cmd_demo(args: argparse.Namespace, config: GatewayConfig) -> int:
    db = _database(config)
    households = db.write(lambda s: create_demo_data(s, args.households, args.seed))
    for household in households:
        print(json.dumps(household.to_json(), ensure_ascii=False))
    return 0


def cmd_receipt_verify(args: argparse.Namespace, _config: GatewayConfig) -> int:
    pem = Path(args.public_key).read_bytes() if args.public_key else _fetch_receipt_key(args)
    try:
        receipt = verify_qr(args.qr, load_public_key_pem(pem))
    except ReceiptError as exc:
        print(f"receipt INVALID: {exc}")
        return 1
    print("receipt valid")
    for name in receipt.__dataclass_fields__:
        print(f"{name}: {getattr(receipt, name)}")
    return 0


def _fetch_receipt_key(args: argparse.Namespace) -> bytes:
    url = args.gateway.rstrip("/") + "/api/v1/gateway"
    try:
        response = requests.get(url, timeout=10, verify=args.ca_file or True)
        response.raise_for_status()
        return response.json()["receipt_public_key_pem"].encode()
    except requests.exceptions.SSLError:
        raise ConfigError(
            f"cannot verify the TLS certificate of {args.gateway}; pass the CA that issued it "
            "with --ca-file PEM"
        ) from None
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise ConfigError(
            f"cannot fetch the receipt key from {url} ({type(exc).__name__}); check the URL "
            "and that the gateway runs, or pass --public-key PEMFILE"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tvpay-gateway", description=__doc__)
    parser.add_argument("--state-dir", type=Path, help="state directory (TVPAY_GATEWAY_STATE)")
    parser.add_argument("--config", type=Path, help="config file (default STATE/gateway.toml)")
    parser.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://…")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create state dir, keys, database and config")
    p.add_argument("--gateway-id", help="the id dongles sign (default tvpay-gw-1)")
    p.add_argument("--manufacturer-ca", action="append", help="trusted manufacturer CA (PEM)")
    p.set_defaults(func=cmd_init, state="create")

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    p.add_argument("--workers", type=int, default=1, help="> 1 only with PostgreSQL")
    p.set_defaults(func=cmd_serve, state="use")

    p = sub.add_parser("staff", help="staff API tokens")
    staff_sub = p.add_subparsers(dest="staff_command", required=True)
    for name in ("add", "revoke"):
        q = staff_sub.add_parser(name)
        q.add_argument("name")
    staff_sub.add_parser("list")
    p.set_defaults(func=cmd_staff, state="database")

    p = sub.add_parser("bills", help="bills from utilities")
    bills_sub = p.add_subparsers(dest="bills_command", required=True)
    q = bills_sub.add_parser("import", help="import a CSV or JSON file, all or nothing")
    q.add_argument("file")
    q.add_argument("--format", choices=("csv", "json"))
    p.set_defaults(func=cmd_bills_import, state="database")

    p = sub.add_parser("demo-data", help="create realistic demo households")
    p.add_argument("--households", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_demo, state="database")

    p = sub.add_parser("receipt", help="receipts")
    receipt_sub = p.add_subparsers(dest="receipt_command", required=True)
    q = receipt_sub.add_parser("verify", help="verify a receipt QR string")
    q.add_argument("qr")
    source = q.add_mutually_exclusive_group(required=True)
    source.add_argument("--public-key", help="PEM file of the gateway's receipt key")
    source.add_argument("--gateway", help="gateway base URL to fetch the key from")
    q.add_argument("--ca-file", help="CA certificate (PEM) for an https --gateway")
    p.set_defaults(func=cmd_receipt_verify, state=None)
    add_dispatch_parsers(sub)
    cli_money.register(sub, _database)
    cli_bank.register(sub, _database)
    cli_prepaid.register(sub, _database)
    cli_shop.register(sub, _database)
    reconcile_command.register(sub, _database)
    return parser


def _check_state(args: argparse.Namespace, config: GatewayConfig) -> None:
    """Fail before any work when the command needs a state directory it cannot use."""
    if args.state == "create":
        check_state_dir(config.state_dir, create=True)
    elif args.state == "use" or (args.state == "database" and not config.database_url):
        check_state_dir(config.state_dir, create=False)


def _database_failure(url: str, exc: BaseException) -> str:
    cause = exc if isinstance(exc, DBAPIError) else exc.__cause__
    if isinstance(cause, DBAPIError):
        return str(database_unreachable(url, cause))
    return f"the database {masked_url(url)} is unavailable: check that it runs and try again"


def main(argv: Sequence[str] | None = None) -> int:
    logfmt.configure()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Keys, database and its WAL files hold secrets and personal data: owner-only from birth.
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    url = ""
    try:
        config = load_config(args.state_dir, args.config, args.database_url)
        url = config.effective_database_url
        _check_state(args, config)
        return args.func(args, config)
    except StateDirError as exc:
        return _fail(str(exc), EXIT_CANTCREAT)
    except DatabaseUnreachable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    except (ServiceUnavailable, OperationalError, InterfaceError) as exc:
        # Anything the database driver raises past the retries: it refused or never answered.
        return _fail(_database_failure(url, exc), EXIT_UNAVAILABLE)
    except (ArgumentError, NoSuchModuleError):
        return _fail(
            f"database_url {masked_url(url)} is not a usable SQLAlchemy URL; "
            "use e.g. postgresql+psycopg://user@host:5432/tvpay",
            EXIT_CONFIG,
        )
    except (GatewayError, OSError, requests.RequestException) as exc:
        message = exc.message if isinstance(exc, APIError) else str(exc)
        return _fail(message, EXIT_CONFIG)


def _fail(message: str, code: int) -> int:
    print(f"tvpay-gateway: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
