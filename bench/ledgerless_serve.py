"""`tvpay-gateway` with the wallet check and posting switched off: the "without the ledger" side
of bench/ledger.py. Payments then take no money; never use it outside the benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gateway.payments as payments
from gateway.cli import main


def _skip(*_args: object, **_kwargs: object) -> None:
    return None


# gateway.payments imported these by name: replacing them there is what its code calls.
payments.require_funds = _skip
payments.take_funds = _skip

if __name__ == "__main__":
    sys.exit(main())
