"""``tvpay-emulator dongle`` (serve virtual dongles on the virtual cable) and
``tvpay-emulator cable ...`` (plug, unplug, faults, list, card) subcommands."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from emulator.firmware.factory import load_or_create_ca
from emulator.firmware.link import TIMING_PROFILES
from emulator.settings import load_table, resolve
from emulator.usb.bus import VirtualBus
from emulator.usb.cable import CableControl, CableError
from emulator.usb.cable_server import CableServer
from emulator.usb.card_slot import RemovalMoment
from emulator.usb.wire import parse_address

log = logging.getLogger("tvpay.emulator.dongle")
DEFAULT_STATE_DIR = str(Path.home() / ".local/state/tvpay/emulator")
DONGLE_DEFAULTS: dict[str, Any] = {
    "listen": "127.0.0.1:7001",
    "state_dir": DEFAULT_STATE_DIR,
    "count": 0,
    "seed": 0,
    "timing": "none",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "dongle",
        help="serve virtual dongles on the virtual cable",
        description="Serve the dongles of a state directory over TCP (the virtual cable). "
        "Settings: flags, then TVPAY_EMULATOR_DONGLE_* variables, then [emulator.dongle] "
        "in --config (default /etc/tvpay/emulator.toml).",
    )
    serve.add_argument("--listen", help="HOST:PORT to listen on (port 0: pick a free one)")
    serve.add_argument("--count", type=int, help="create factory dongles until there are N")
    serve.add_argument("--state-dir", help=f"dongle state directory (default {DEFAULT_STATE_DIR})")
    serve.add_argument("--seed", type=int, help="seed for new serials and fault decisions")
    serve.add_argument("--timing", choices=sorted(TIMING_PROFILES), help="'hardware': SE latency")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.set_defaults(run=run_dongle)

    cable = subparsers.add_parser("cable", help="plug, unplug, list and fault virtual dongles")
    cable.add_argument(
        "--address",
        help="cable HOST:PORT (or TVPAY_EMULATOR_CABLE_ADDRESS; default 127.0.0.1:7001)",
    )
    actions = cable.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="dongles on the cable, as JSON lines")
    for name, text in (
        ("plug", "plug a dongle back in"),
        ("unplug", "pull a dongle out"),
        ("clear-faults", "disarm a dongle's faults"),
    ):
        actions.add_parser(name, help=text).add_argument("serial")
    fault = actions.add_parser("fault", help="arm a fault, e.g. 'fault SERIAL drop direction=in'")
    fault.add_argument("serial")
    fault.add_argument("kind", help="drop corrupt duplicate delay stall unplug power_cut")
    fault.add_argument("params", nargs="*", help="key=value: direction probability count ...")
    add = actions.add_parser("add", help="manufacture and plug new dongles")
    add.add_argument("--count", type=int, default=1)
    add.add_argument("--seed", type=int)
    _register_card(actions)
    cable.set_defaults(run=run_cable)


def _register_card(actions: argparse._SubParsersAction) -> None:
    card = actions.add_parser(
        "card",
        help="purchase cards in a dongle's card slot",
        description="Move a purchase card (the JSON file a virtual card is kept in) into or out "
        "of a dongle's card slot, show the slot, or pull the card out at a coming APDU.",
    )
    moves = card.add_subparsers(dest="card_action", required=True, metavar="CARD_ACTION")
    insert = moves.add_parser("insert", help="put the card kept in FILE into the slot")
    insert.add_argument("serial")
    insert.add_argument("file", type=Path)
    moves.add_parser("remove", help="take the card out of the slot").add_argument("serial")
    moves.add_parser("status", help="the slot, as one JSON line").add_argument("serial")
    pull = moves.add_parser("fault", help="pull the card out at the K-th APDU from now")
    pull.add_argument("serial")
    pull.add_argument("moment", choices=[m.value for m in RemovalMoment])
    pull.add_argument("apdu", type=int, metavar="K")


def run_dongle(args: argparse.Namespace) -> int:
    flags = {
        "listen": args.listen,
        "state_dir": args.state_dir,
        "count": args.count,
        "seed": args.seed,
        "timing": args.timing,
    }
    table = load_table(args.config, "emulator.dongle")
    settings = resolve(flags, DONGLE_DEFAULTS, "TVPAY_EMULATOR_DONGLE_", table)
    if settings["timing"] not in TIMING_PROFILES:
        print(f"unknown timing profile {settings['timing']!r}", file=sys.stderr)
        return 2
    state_dir = Path(settings["state_dir"])
    bus = VirtualBus(state_dir, timing=TIMING_PROFILES[settings["timing"]], seed=settings["seed"])
    ca = load_or_create_ca(state_dir)
    bus.load()
    missing = settings["count"] - len(bus.dongles())
    if missing > 0:
        bus.manufacture(missing, settings["seed"] or None)
    host, port = parse_address(settings["listen"])
    server = CableServer(bus, host, port)
    serials = [d.serial for d in bus.dongles()]
    print(
        f"address={server.address} backend=emulator.usb.cable:backend?{server.address} "
        f"manufacturer_ca={ca.cert_path} serials={','.join(serials)}",
        flush=True,
    )
    log.info(
        "event=listening address=%s dongles=%d state_dir=%s timing=%s",
        server.address,
        len(serials),
        state_dir,
        settings["timing"],
    )
    bus.subscribe(
        lambda action, props: log.info(
            "event=%s serial=%s busnum=%s devnum=%s",
            action,
            props.get("ID_SERIAL_SHORT", "-"),
            props["BUSNUM"],
            props["DEVNUM"],
        ),
        replay=False,
    )
    stopped_by: list[str] = []

    def stop(signum: int, _frame: object) -> None:
        # Closing the listener ends serve_forever's accept; the stop is logged once, below.
        stopped_by.append(signal.Signals(signum).name)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    log.info("event=stopped address=%s signal=%s", server.address, (stopped_by or ["-"])[0])
    return 0


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise CableError(f"fault parameter {pair!r} is not key=value")
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text  # bare words such as direction=in
    return params


def _run_card(control: CableControl, args: argparse.Namespace) -> None:
    if args.card_action == "insert":
        print(f"atr={control.card_insert(args.serial, args.file).hex()}")
    elif args.card_action == "remove":
        print(f"card={control.card_remove(args.serial) or '-'}")
    elif args.card_action == "status":
        print(json.dumps(control.card_status(args.serial)))
    else:
        control.card_fault(args.serial, args.moment, args.apdu)


def run_cable(args: argparse.Namespace) -> int:
    address = resolve(
        {"address": args.address}, {"address": "127.0.0.1:7001"}, "TVPAY_EMULATOR_CABLE_", {}
    )["address"]
    try:
        with CableControl(address) as control:
            if args.action == "list":
                for dongle in control.list():
                    print(json.dumps(dongle))
            elif args.action == "plug":
                control.plug(args.serial)
            elif args.action == "unplug":
                control.unplug(args.serial)
            elif args.action == "clear-faults":
                control.clear_faults(args.serial)
            elif args.action == "fault":
                control.fault(args.serial, args.kind, **_params(args.params))
            elif args.action == "add":
                for serial in control.add_dongle(args.count, seed=args.seed):
                    print(serial)
            elif args.action == "card":
                _run_card(control, args)
    except CableError as exc:
        print(f"tvpay-emulator cable: {exc}", file=sys.stderr)
        return 1
    return 0
