"""What the ledger costs: complete payments per second (bench/gateway.py's run: create + dongle
signature + authorize over real HTTP) with the wallet check and posting, and in the same run the
same figure from a gateway with them switched off (bench/ledgerless_serve.py).

Prints one JSON object per line, per database, with both rates and their ratio. One worker on
both sides: the switched-off twin patches one process only.
Usage: .venv/bin/python bench/ledger.py [--clients 8] [--seconds 5] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gateway import SERVE, run_backend  # noqa: E402
from tests.gateway.pgcluster import pg_cluster  # noqa: E402

WITHOUT = [str(ROOT / "bench" / "ledgerless_serve.py")]


@contextmanager
def databases(name: str) -> Iterator[Iterator[str]]:
    """Fresh, empty databases of one backend, one per side of the comparison."""
    if name == "sqlite":
        yield (f"sqlite:///{tempfile.mkdtemp(prefix='tvpay-bench-db-')}/gateway.db" for _ in "ab")
        return
    with pg_cluster() as server:
        admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")

        def fresh() -> Iterator[str]:
            for side in ("with_ledger", "without_ledger"):
                with admin.connect() as conn:
                    conn.execute(text(f"CREATE DATABASE bench_{side}"))
                yield f"{server}/bench_{side}"

        try:
            yield fresh()
        finally:
            admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--client-mode", choices=("processes", "threads"), default="processes")
    args = parser.parse_args()
    os.umask(0o077)
    for name in args.db.split(","):
        with databases(name) as urls:
            runs = {
                side: run_backend(
                    name, next(urls), args.clients, args.seconds, 1, args.client_mode, serve
                )
                for side, serve in (("with_ledger", SERVE), ("without_ledger", WITHOUT))
            }
        with_rate = runs["with_ledger"]["payments_per_s"]
        without_rate = runs["without_ledger"]["payments_per_s"]
        line = {
            "bench": "ledger",
            "db": name,
            "clients": args.clients,
            "client_mode": args.client_mode,
            "payments_per_s_with_ledger": with_rate,
            "payments_per_s_without_ledger": without_rate,
            # No ratio from a side whose clients paid nothing (they started after the window).
            "ratio": round(with_rate / without_rate, 3) if with_rate and without_rate else None,
            "payments_with_ledger": runs["with_ledger"]["payments"],
            "payments_without_ledger": runs["without_ledger"]["payments"],
            "p50_ms_with_ledger": runs["with_ledger"]["p50_ms"],
            "p50_ms_without_ledger": runs["without_ledger"]["p50_ms"],
            "errors": runs["with_ledger"]["errors"] + runs["without_ledger"]["errors"],
        }
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
