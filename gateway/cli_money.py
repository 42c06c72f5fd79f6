"""``tvpay-gateway wallet credit``, ``refund`` and ``ledger check|balance``: the operator's side of
the money (docs/money.md). Registered on the main parser by gateway.cli."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gateway.config import GatewayConfig
from gateway.db.engine import Database
from gateway.errors import ConfigError
from gateway.funding.refunds import refund_payment
from gateway.funding.wallet import credit_wallet
from gateway.ledger import balance, check, currency_of, transfer_count
from gateway.ledger.amounts import show

ACTOR = "cli"  # the audit log's name for whoever runs the command on the gateway host
EXIT_PROBLEMS = 1

DatabaseOpener = Callable[[GatewayConfig], Database]


def _wallet_credit(args: argparse.Namespace, db: Database) -> int:
    done = db.write(
        lambda s: credit_wallet(
            s,
            ACTOR,
            args.household,
            args.amount_fen,
            args.currency,
            args.reference,
            args.channel,
        )
    )
    verb = "already credited" if done["replayed"] else "credited"
    print(
        f"{verb} {show(done['amount_fen'], done['currency'])} to household {args.household} "
        f"(reference {args.reference}); wallet balance "
        f"{show(done['balance_fen'], done['currency'])}"
    )
    return 0


def _refund(args: argparse.Namespace, db: Database) -> int:
    done = db.write(lambda s: refund_payment(s, ACTOR, args.payment_id, args.reason))
    amount = show(done["amount_fen"], done["currency"])
    print(
        f"payment {done['payment_id']} refunded: {amount} back to its {done['funding_source']['kind']}"
    )
    return 0


def _ledger_check(_args: argparse.Namespace, db: Database) -> int:
    problems, count = db.read(lambda s: (check(s), transfer_count(s)))
    for problem in problems:
        print(problem)
    if problems:
        print(f"ledger NOT sound: {len(problems)} problems in {count} transfers")
        return EXIT_PROBLEMS
    print(f"ledger sound: {count} transfers")
    return 0


def _ledger_balance(args: argparse.Namespace, db: Database) -> int:
    if ":" not in args.account:
        raise ConfigError(
            f"{args.account!r} is not an account code: use e.g. wallet:HOUSEHOLD_NO, "
            "payable:BILLER, external:topups, bank:clearing, external:settlements"
        )
    fen, currency = db.read(lambda s: (balance(s, args.account), currency_of(s, args.account)))
    if currency is None:
        print(f"{args.account}: no transfers yet")
        return 0
    print(f"{args.account}: {fen} fen ({show(fen, currency)})")
    return 0


def register(sub: argparse._SubParsersAction, database: DatabaseOpener) -> None:
    """Add the money commands to ``tvpay-gateway``'s subcommands."""

    def runner(handler: Callable[[argparse.Namespace, Database], int]):
        return lambda args, config: handler(args, database(config))

    p = sub.add_parser("wallet", help="household wallets")
    wallet_sub = p.add_subparsers(dest="wallet_command", required=True)
    q = wallet_sub.add_parser("credit", help="credit money received at a shop or by transfer")
    q.add_argument("--household", required=True, help="household number")
    q.add_argument("--amount-fen", type=int, required=True, help="amount in fen (¥12.00 = 1200)")
    q.add_argument("--reference", required=True, help="shop receipt or bank transfer number")
    q.add_argument("--currency", default="CNY")
    q.add_argument("--channel", choices=("shop", "bank_transfer"), default="shop")
    q.set_defaults(func=runner(_wallet_credit), state="database")

    p = sub.add_parser("refund", help="give a payment's money back to where it came from")
    p.add_argument("payment_id")
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
    p.set_defaults(func=runner(_refund), state="database")

    p = sub.add_parser("ledger", help="the double-entry ledger")
    ledger_sub = p.add_subparsers(dest="ledger_command", required=True)
    q = ledger_sub.add_parser("check", help="print the ledger's problems; exit 1 if any")
    q.set_defaults(func=runner(_ledger_check), state="database")
    q = ledger_sub.add_parser("balance", help="an account's balance in fen")
    q.add_argument("account", help="e.g. wallet:HOUSEHOLD_NO or payable:BILLER")
    q.set_defaults(func=runner(_ledger_balance), state="database")
