"""``tvpay-emulator factory``: manufacture factory-fresh virtual dongles."""

from __future__ import annotations

import argparse
from pathlib import Path

from emulator.firmware.factory import load_or_create_ca, manufacture_batch


def register(subparsers: argparse._SubParsersAction) -> None:
    factory = subparsers.add_parser(
        "factory",
        help="create factory-fresh dongles and the manufacturer CA",
        description="Create N factory-fresh dongle state files (serial, attestation key and "
        "certificate) in DIR, and the manufacturer CA if DIR has none. Prints where the CA "
        "certificate is: the staff tool and the gateway must trust it.",
    )
    factory.add_argument("--out", type=Path, required=True, metavar="DIR")
    factory.add_argument("--count", type=int, default=1, metavar="N")
    factory.add_argument("--seed", type=int, help="make the serials reproducible")
    factory.set_defaults(run=run_factory)


def run_factory(args: argparse.Namespace) -> int:
    ca = load_or_create_ca(args.out)
    for serial in manufacture_batch(args.out, args.count, args.seed):
        print(f"dongle {serial}")
    print(f"manufacturer_ca {ca.cert_path}")
    return 0
