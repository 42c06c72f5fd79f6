"""``tvpay-gateway prepaid rules set`` and ``prepaid meter add|list``: the operator registers a
utility's prepaid rules and tariff, and the prepaid meters of its accounts (docs/gateway.md §2).
Registered under ``prepaid`` by gateway.cli_prepaid."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gateway.clock import now
from gateway.config import GatewayConfig
from gateway.db.engine import Database
from gateway.ledger.amounts import show
from gateway.prepaid.meters import KINDS, MeterError, StsIdentity, add_meter, list_meters
from gateway.prepaid.rules import CURRENCY, DEFAULT_PRESETS, DEFAULTS, Rules, RulesError, save_rules
from gateway.prepaid.tariff import parse_tariff

DatabaseOpener = Callable[[GatewayConfig], Database]


def _presets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise RulesError(
            "--presets-fen is a comma-separated list of fen, e.g. 5000,10000"
        ) from None


def _rules_set(args: argparse.Namespace, db: Database) -> int:
    rules = Rules(
        biller_code=args.biller,
        multiple_of_fen=args.multiple_of_fen,
        min_fen=args.min_fen,
        max_purchase_fen=args.max_purchase_fen,
        max_balance_fen=args.max_balance_fen,
        presets_fen=_presets(args.presets_fen),
        fulfil_window_seconds=args.fulfil_window_seconds,
        tariff=parse_tariff(args.tariff),
    )
    db.write(lambda s: save_rules(s, rules))
    tiers = ", ".join(
        f"{'rest' if t.upto_wh is None else f'up to {t.upto_wh} Wh'} at "
        f"{t.price_milli_fen_per_kwh} milli-fen/kWh"
        for t in rules.tariff
    )
    print(
        f"prepaid rules of {args.biller}: {show(rules.min_fen, CURRENCY)}.."
        f"{show(rules.max_purchase_fen, CURRENCY)} in steps of "
        f"{show(rules.multiple_of_fen, CURRENCY)}, meter at most "
        f"{show(rules.max_balance_fen, CURRENCY)}; tariff {tiers}"
    )
    return 0


def _meter_add(args: argparse.Namespace, db: Database) -> int:
    sgc, ti, krn = args.sgc, args.ti, args.krn
    sts = None
    if (sgc, ti, krn) != (None, None, None):
        if sgc is None or ti is None or krn is None:
            raise MeterError("a token meter needs all of --sgc, --ti and --krn")
        sts = StsIdentity(sgc, ti, krn)
    meter = db.write(
        lambda s: add_meter(
            s,
            args.utility,
            args.account_no,
            args.kind,
            args.meter_no,
            card_serial=args.card_serial,
            sts=sts,
            now=now(),
        )
    )
    print(f"{meter.id}\t{meter.kind}\t{args.account_no}\t{meter.meter_no}")
    return 0


def _meter_list(args: argparse.Namespace, db: Database) -> int:
    for row in db.read(lambda s: list_meters(s, args.biller)):
        m = row.meter
        extra = {
            "card": f"card {m.card_serial} count {m.card_count}",
            "token": f"sgc {m.sts_sgc} ti {m.sts_ti} krn {m.sts_krn} last_tid {m.last_tid}",
        }.get(m.kind, "")
        print(
            f"{m.id}\t{m.kind}\t{row.biller.code}\t{row.account.account_no}\t{m.meter_no}\t{extra}"
        )
    return 0


def register(prepaid_sub: argparse._SubParsersAction, database: DatabaseOpener) -> None:
    """Add ``rules set`` and ``meter add|list`` under ``tvpay-gateway prepaid``."""

    def runner(handler: Callable[[argparse.Namespace, Database], int]):
        return lambda args, config: handler(args, database(config))

    p = prepaid_sub.add_parser("rules", help="a utility's prepaid rules and tariff")
    rules_sub = p.add_subparsers(dest="rules_command", required=True)
    q = rules_sub.add_parser("set", help="create or replace a biller's rules")
    q.add_argument("biller", help="biller code, e.g. SGCC-BJ")
    q.add_argument(
        "--tariff",
        required=True,
        help='JSON tiers, e.g. [{"upto_wh": 2160000, "price_milli_fen_per_kwh": 56030}, '
        '{"upto_wh": null, "price_milli_fen_per_kwh": 86030}]',
    )
    for name, default in DEFAULTS.items():
        q.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    q.add_argument("--presets-fen", default=",".join(str(p) for p in DEFAULT_PRESETS))
    q.set_defaults(func=runner(_rules_set), state="database")

    p = prepaid_sub.add_parser("meter", help="prepaid meters of utility accounts")
    meter_sub = p.add_subparsers(dest="meter_command", required=True)
    q = meter_sub.add_parser("add", help="register the prepaid meter of an account")
    q.add_argument("account_no", help="the account (户号) the meter belongs to")
    q.add_argument("--utility", default="electricity")
    q.add_argument("--kind", choices=KINDS, required=True)
    q.add_argument("--meter-no", required=True, help="as printed on the meter")
    q.add_argument("--card-serial", help="card meters: the purchase card's serial (16 hex)")
    q.add_argument("--sgc", type=int, help="token meters: supply group code")
    q.add_argument("--ti", type=int, help="token meters: tariff index")
    q.add_argument("--krn", type=int, help="token meters: key revision number")
    q.set_defaults(func=runner(_meter_add), state="database")
    q = meter_sub.add_parser("list", help="every registered meter")
    q.add_argument("--biller", help="only this biller's")
    q.set_defaults(func=runner(_meter_list), state="database")
