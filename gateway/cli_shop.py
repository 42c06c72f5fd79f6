"""``tvpay-gateway shop add|list``: the operator adds a shop (代售点) and sees every shop's float
and commission (docs/gateway.md §2). Top a shop's float up with ``wallet credit``. Registered on
the main parser by gateway.cli."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gateway.config import GatewayConfig
from gateway.db.engine import Database
from gateway.ledger.amounts import show
from gateway.shop.shops import add_shop, list_shops

ACTOR = "cli"  # the audit log's name for whoever runs the command on the gateway host

DatabaseOpener = Callable[[GatewayConfig], Database]


def _add(args: argparse.Namespace, db: Database) -> int:
    shop = db.write(
        lambda s: add_shop(s, ACTOR, args.shop_no, args.name, args.address, args.commission_bp)
    )
    print(
        f"shop {shop['shop_no']} added, commission {shop['commission_bp']} bp per sale; top up "
        f"its float with 'tvpay-gateway wallet credit {shop['shop_no']} …'"
    )
    return 0


def _list(args: argparse.Namespace, db: Database) -> int:
    for shop in db.read(list_shops):
        currency = shop["currency"]
        print(
            f"{shop['shop_no']}\t{shop['name']}\t{shop['commission_bp']} bp\t"
            f"float {show(shop['float_fen'], currency)}\t"
            f"commission {show(shop['commission_earned_fen'], currency)}"
        )
    return 0


def register(sub: argparse._SubParsersAction, database: DatabaseOpener) -> None:
    """Add ``shop add|list`` to ``tvpay-gateway``'s subcommands."""

    def runner(handler: Callable[[argparse.Namespace, Database], int]):
        return lambda args, config: handler(args, database(config))

    p = sub.add_parser("shop", help="shops (代售点) that sell prepaid electricity")
    shop_sub = p.add_subparsers(dest="shop_command", required=True)
    q = shop_sub.add_parser("add", help="add a shop (audited)")
    q.add_argument("shop_no", help="the shop's number, like a household number")
    q.add_argument("--name", required=True)
    q.add_argument("--address", required=True)
    q.add_argument(
        "--commission-bp", type=int, required=True, help="basis points of each sale (50 = 0.5%%)"
    )
    q.set_defaults(func=runner(_add), state="database")
    q = shop_sub.add_parser("list", help="every shop, its float and commission earned")
    q.set_defaults(func=runner(_list), state="database")
