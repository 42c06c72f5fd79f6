"""``tvpay-gateway dispatch`` and ``tvpay-gateway billers notify-url`` (docs/money.md)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from gateway.bank_debits import Collector, resolve_processing, reversal_handler
from gateway.bankclient import BankClient
from gateway.billers import set_notify_url
from gateway.config import GatewayConfig
from gateway.db.engine import Database, make_engine
from gateway.db.migrate import upgrade
from gateway.dispatch.clock import Clock
from gateway.dispatch.runner import Dispatcher, DispatchSettings, Handler
from gateway.dispatch.utility import DeliveryError
from gateway.errors import ConfigError
from gateway.keys import load_keys
from gateway.writeoff import REVERSAL_TOPIC

log = logging.getLogger("tvpay.gateway.dispatch")


def _database(config: GatewayConfig, connections: int) -> Database:
    engine = make_engine(config.effective_database_url, pool_size=connections)
    upgrade(engine)
    return Database(engine)


def cmd_dispatch(args: argparse.Namespace, config: GatewayConfig) -> int:
    if args.workers < 1 or args.lease < 2 or not 0 < args.timeout < args.lease:
        raise ConfigError(
            "dispatch needs --workers >= 1 and 0 < --timeout < --lease (the lease must outlast "
            "the wait for the utility's answer)"
        )
    if args.resolve_every <= 0 or args.resolve_older_than < 0:
        raise ConfigError("dispatch needs --resolve-every > 0 and --resolve-older-than >= 0")
    settings = DispatchSettings(lease=args.lease, timeout=args.timeout, batch=args.batch)
    clock = Clock(Path(args.clock_file) if args.clock_file else None)
    handlers: dict[str, Handler] = {}
    bank = None
    if config.bank_url:
        bank = BankClient(config.bank_url.rstrip("/"), config.bank_timeout_seconds)
        handlers[REVERSAL_TOPIC] = reversal_handler(bank, DeliveryError)
    db = _database(config, args.workers + 2)
    keys = load_keys(config.state_dir)
    dispatcher = Dispatcher(db, keys, clock, settings, handlers)
    if args.once:
        tally = dispatcher.run_once(args.workers)
        print(json.dumps({"delivered": tally.delivered, "failed": tally.failed}), flush=True)
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if bank is not None:
        collector = Collector(db, bank, keys, config.gateway_id)
        resolver = threading.Thread(
            target=_resolve_until,
            args=(collector, args.resolve_every, args.resolve_older_than, stop),
            daemon=True,
        )
        resolver.start()
    print(f"dispatcher running workers={args.workers}", flush=True)
    dispatcher.run_forever(args.workers, stop)
    return 0


def _resolve_until(
    collector: Collector, every: float, older_than: int, stop: threading.Event
) -> None:
    """Finish mandate payments whose bank answer was lost (docs/money.md, "Bank mandates"),
    until the dispatcher stops."""
    while not stop.wait(every):
        try:
            report = resolve_processing(collector, older_than)
        except Exception:  # the bank or the database briefly away: the next round tries again
            log.exception("event=resolve_failed")
            continue
        if report.outcomes:
            log.info("event=resolved outcomes=%s", report.outcomes)


def cmd_notify_url(args: argparse.Namespace, config: GatewayConfig) -> int:
    if bool(args.codes) == args.all:
        raise ConfigError("name the billers (CODE ...) or pass --all, not both")
    db = _database(config, 1)
    url = None if args.url == "none" else args.url
    codes = db.write(lambda s: set_notify_url(s, args.codes or None, url))
    for code in codes:
        print(f"biller {code}: write-offs go to {url or 'nowhere (not sent)'}")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("dispatch", help="deliver outbox messages (write-offs) to the utilities")
    p.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    p.add_argument("--workers", type=int, default=1, help="threads delivering in parallel")
    p.add_argument("--lease", type=int, default=60, help="seconds a claimed message is ours")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    p.add_argument("--batch", type=int, default=10, help="messages claimed at a time")
    p.add_argument("--clock-file", help="file holding the Unix time to use (default: real)")
    p.add_argument(
        "--resolve-every",
        type=float,
        default=30.0,
        help="seconds between asking the bank about mandate payments still processing",
    )
    p.add_argument(
        "--resolve-older-than",
        type=int,
        default=60,
        help="only payments processing for at least this many seconds (a fresh one may be "
        "answered any moment)",
    )
    p.set_defaults(func=cmd_dispatch, state="database")

    p = sub.add_parser("billers", help="billers' settings")
    billers_sub = p.add_subparsers(dest="billers_command", required=True)
    q = billers_sub.add_parser("notify-url", help="where a biller's write-offs are sent")
    q.add_argument("url", help="http(s) base URL, or 'none' to stop sending")
    q.add_argument("codes", nargs="*", metavar="CODE", help="biller codes")
    q.add_argument("--all", action="store_true", help="every biller")
    p.set_defaults(func=cmd_notify_url, state="database")
