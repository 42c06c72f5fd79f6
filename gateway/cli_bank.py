"""``tvpay-gateway mandate bind|revoke|list`` and ``tvpay-gateway bank resolve``: direct-debit
mandates and the payments the bank has not answered for (docs/money.md, "Bank mandates").
Registered on the main parser by gateway.cli."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from gateway.bank_debits import Collector, resolve_processing
from gateway.bankclient import BankClient
from gateway.config import GatewayConfig
from gateway.db.engine import Database
from gateway.errors import ConfigError
from gateway.keys import load_keys
from gateway.ledger.amounts import show
from gateway.mandates import bind_mandate, list_mandates, revoke_mandate

ACTOR = "cli"  # the audit log's name for whoever runs the command on the gateway host
EXIT_UNRESOLVED = 1

DatabaseOpener = Callable[[GatewayConfig], Database]


def _line(m: dict[str, Any]) -> str:
    return (
        f"{m['mandate_id']}\t{m['status']}\t{m['card_masked']}\t"
        f"per payment {show(m['per_payment_limit_fen'], m['currency'])}\t"
        f"monthly {show(m['monthly_limit_fen'], m['currency'])}\t"
        f"spent this month {show(m['spent_this_month_fen'], m['currency'])}"
    )


def _bind(args: argparse.Namespace, config: GatewayConfig, db: Database) -> int:
    if not config.bank_url:
        raise ConfigError("set bank_url in gateway.toml first: a mandate needs a bank to debit")
    done = db.write(
        lambda s: bind_mandate(
            s,
            ACTOR,
            args.household,
            args.bank_token,
            args.card_masked,
            args.per_payment_limit_fen,
            args.monthly_limit_fen,
        )
    )
    print(_line(done))
    return 0


def _revoke(args: argparse.Namespace, _config: GatewayConfig, db: Database) -> int:
    print(_line(db.write(lambda s: revoke_mandate(s, ACTOR, args.mandate_id, args.reason))))
    return 0


def _list(args: argparse.Namespace, _config: GatewayConfig, db: Database) -> int:
    for mandate in db.read(lambda s: list_mandates(s, args.household)):
        print(_line(mandate))
    return 0


def _resolve(args: argparse.Namespace, config: GatewayConfig, db: Database) -> int:
    if not config.bank_url:
        raise ConfigError("set bank_url in gateway.toml: the bank is who knows the answers")
    if args.older_than < 0:
        raise ConfigError("--older-than is a number of seconds, 0 or more")
    bank = BankClient(config.bank_url.rstrip("/"), config.bank_timeout_seconds)
    collector = Collector(db, bank, load_keys(config.state_dir), config.gateway_id)
    report = resolve_processing(collector, args.older_than)
    for payment_id, status in report.outcomes.items():
        print(f"{payment_id}\t{status}")
    left = report.count("processing")
    print(f"resolved {len(report.outcomes) - left} payments, {left} still processing")
    return EXIT_UNRESOLVED if left else 0


def register(sub: argparse._SubParsersAction, database: DatabaseOpener) -> None:
    """Add the mandate and bank commands to ``tvpay-gateway``'s subcommands."""

    def runner(handler: Callable[[argparse.Namespace, GatewayConfig, Database], int]):
        return lambda args, config: handler(args, config, database(config))

    p = sub.add_parser("mandate", help="direct-debit mandates on households' bank cards")
    mandate_sub = p.add_subparsers(dest="mandate_command", required=True)
    q = mandate_sub.add_parser("bind", help="record a mandate the household signed at its bank")
    q.add_argument("--household", required=True, help="household number")
    q.add_argument("--bank-token", required=True, help="the card's token from the bank")
    q.add_argument("--card-masked", required=True, help="e.g. 622202******1234")
    q.add_argument("--per-payment-limit-fen", type=int, required=True)
    q.add_argument("--monthly-limit-fen", type=int, required=True)
    q.set_defaults(func=runner(_bind), state="database")
    q = mandate_sub.add_parser("revoke", help="stop new payments from a mandate")
    q.add_argument("mandate_id")
    q.add_argument("--reason", required=True, help="why (kept in the audit log)")
    q.set_defaults(func=runner(_revoke), state="database")
    q = mandate_sub.add_parser("list", help="a household's mandates")
    q.add_argument("--household", required=True, help="household number")
    q.set_defaults(func=runner(_list), state="database")

    p = sub.add_parser("bank", help="the bank's direct debits")
    bank_sub = p.add_subparsers(dest="bank_command", required=True)
    q = bank_sub.add_parser(
        "resolve", help="finish processing payments from the bank's answers; exit 1 if any remain"
    )
    q.add_argument(
        "--older-than", type=int, default=60, help="only payments created this many seconds ago"
    )
    q.set_defaults(func=runner(_resolve), state="database")
