"""``tvpay-gateway reconcile``, ``reconcile-bank`` and ``settle`` (docs/money.md,
"Reconciliation and settlement"). Registered on the main parser by gateway.cli."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig
from gateway.db.engine import Database
from gateway.ledger.amounts import show
from gateway.reconcile.days import parse_day
from gateway.reconcile.rules import KINDS
from gateway.reconcile.sources import BankSettlement, Source, UtilityStatement
from gateway.reconcile.store import reconcile
from gateway.settle import settle

ACTOR = "cli"
EXIT_FINDINGS = 1  # the file and our records disagree somewhere staff must look

DatabaseOpener = Callable[[GatewayConfig], Database]


def _summary(report: dict[str, Any]) -> str:
    counts = report["counts"]
    parts = ", ".join(f"{counts[k]} {k}" for k in KINDS)
    again = " (this file was reconciled before: its first report)" if report["replayed"] else ""
    scope = f" {report['scope']}" if report["scope"] else ""
    return (
        f"reconciliation {report['id']}: {report['source']}{scope} {report['day']}, "
        f"{report['lines']} lines: {parts}; {report['resolved']} resolved automatically{again}"
    )


def _needs_staff(report: dict[str, Any]) -> bool:
    counts = report["counts"]
    return any(counts[k] for k in ("missing_here", "mismatch", "duplicate"))


def _run(args: argparse.Namespace, db: Database, source: Source) -> int:
    path = Path(args.file)
    with path.open("rb") as stream:
        report = reconcile(db, source, stream, path.name, ACTOR)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, sort_keys=True))
    else:
        print(_summary(report))
        for finding in report["findings"]:
            where = f"line {finding['line']}" if finding["line"] else "ours"
            print(f"  {finding['kind']}\t{finding['key']}\t{where}\t{finding['detail']}")
    return EXIT_FINDINGS if _needs_staff(report) else 0


def _reconcile(args: argparse.Namespace, db: Database) -> int:
    return _run(args, db, UtilityStatement(args.biller, parse_day(args.date)))


def _reconcile_bank(args: argparse.Namespace, db: Database) -> int:
    return _run(args, db, BankSettlement(parse_day(args.date)))


def _settle(args: argparse.Namespace, db: Database) -> int:
    day = parse_day(args.date)
    done = db.write(lambda s: settle(s, day))
    if args.json:
        print(json.dumps([s.to_json() for s in done], ensure_ascii=False))
        return 0
    print(f"{'biller':<20} {'amount':>16} {'status':<8} ref")
    for s in done:
        print(f"{s.biller:<20} {show(s.amount_fen, s.currency):>16} {s.status:<8} {s.ref}")
    return 0


def register(sub: argparse._SubParsersAction, database: DatabaseOpener) -> None:
    """Add the reconciliation and settlement commands to ``tvpay-gateway``."""

    def runner(handler: Callable[[argparse.Namespace, Database], int]):
        return lambda args, config: handler(args, database(config))

    p = sub.add_parser("reconcile", help="compare a utility's daily statement with our payments")
    p.add_argument("--biller", required=True, help="the biller the statement is for")
    p.add_argument("--date", required=True, help="the statement's day, YYYY-MM-DD (UTC)")
    p.add_argument("file", help="the statement CSV (GET /statements/DATE.csv)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=runner(_reconcile), state="database")

    p = sub.add_parser("reconcile-bank", help="compare the bank's settlement with our debits")
    p.add_argument("--date", required=True, help="the settlement's day, YYYY-MM-DD (UTC)")
    p.add_argument("file", help="the settlement CSV (GET /settlements/DATE.csv)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=runner(_reconcile_bank), state="database")

    p = sub.add_parser("settle", help="pay each utility its net collected amount (T+1)")
    p.add_argument("--date", required=True, help="settle what was collected up to this day")
    p.add_argument("--json", action="store_true", help="print the settlements as JSON")
    p.set_defaults(func=runner(_settle), state="database")
