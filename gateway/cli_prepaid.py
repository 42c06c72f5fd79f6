"""``tvpay-gateway prepaid …``: the command group of prepaid electricity, and in it ``sweep``,
which reverses (冲正) card purchases never written within their window (docs/prepaid.md). The
operator's setup commands (``rules set``, ``meter add|list``) come from gateway.cli_prepaid_setup.
Registered on the main parser by gateway.cli."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from gateway import cli_prepaid_setup
from gateway.clock import now
from gateway.config import GatewayConfig
from gateway.db.engine import Database
from gateway.errors import ConfigError
from gateway.prepaid.sweep import sweep

EXIT_PROBLEMS = 1

DatabaseOpener = Callable[[GatewayConfig], Database]


def _sweep(args: argparse.Namespace, db: Database) -> int:
    if args.now is not None and args.now < 0:
        raise ConfigError("--now must be Unix seconds (0 or more)")
    report = sweep(db, now() if args.now is None else args.now)
    for purchase_id in report.reversed:
        print(f"reversed {purchase_id}: never written to the card, payment refunded")
    for purchase_id in report.needs_card:
        print(
            f"needs card {purchase_id}: a write-card block went out and the card was not seen "
            "since; have the household show the card at a box, or check it at the counter"
        )
    for purchase_id in report.failed:
        print(f"FAILED {purchase_id}: see the gateway log (event=card_purchase_reversal_failed)")
    changed = {"reversed": report.reversed, "needs_card": report.needs_card}
    print(json.dumps(changed | {"failed": report.failed}))  # last line: for scripts
    return EXIT_PROBLEMS if report.failed else 0


def register(sub: argparse._SubParsersAction, database: DatabaseOpener) -> None:
    """Add ``prepaid`` and its subcommands to ``tvpay-gateway``'s subcommands."""
    p = sub.add_parser("prepaid", help="prepaid electricity")
    prepaid_sub = p.add_subparsers(dest="prepaid_command", required=True)
    q = prepaid_sub.add_parser(
        "sweep", help="reverse card purchases not written within their window (冲正)"
    )
    q.add_argument("--now", type=int, help="Unix seconds to judge the windows by (default: now)")
    q.set_defaults(func=lambda args, config: _sweep(args, database(config)), state="database")
    cli_prepaid_setup.register(prepaid_sub, database)
