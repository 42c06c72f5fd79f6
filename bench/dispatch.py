"""Dispatcher throughput: write-off notifications per second from the outbox, through
``tvpay-gateway dispatch --once`` (claim, sign, POST, record the answer), to the utility
simulator process, which checks each signature and writes the bill off in its own database.

Prints one JSON object per line, per database and worker count.
Usage: .venv/bin/python bench/dispatch.py [--payments 500] [--workers 1,4] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gateway.billers import set_notify_url  # noqa: E402
from gateway.bills_import import import_rows  # noqa: E402
from gateway.config import GatewayConfig  # noqa: E402
from gateway.context import build_context  # noqa: E402
from gateway.db.models import Bill, Household, Payment, UtilityAccount  # noqa: E402
from gateway.ids import new_challenge, new_id  # noqa: E402
from gateway.keys import ensure_keys  # noqa: E402
from gateway.registry import create_household  # noqa: E402
from gateway.writeoff import enqueue_writeoff  # noqa: E402
from tests.emulator.utility import utility_process  # noqa: E402
from tests.gateway.helpers import bill_rows  # noqa: E402
from tests.gateway.pgcluster import pg_cluster  # noqa: E402


def paid_bills(session: Session, count: int) -> None:
    """``count`` succeeded payments, each with its write-off queued, as authorize leaves them."""
    number = uuid.uuid4().hex[:10]
    create_household(session, "bench", number, "张伟", "北京市")
    household = session.scalar(select(Household).where(Household.household_no == number))
    import_rows(session, [bill_rows(f"{n:010d}", "张伟", 1)[0] for n in range(count)], "bench")
    t = int(time.time())
    bills = session.execute(select(Bill, UtilityAccount).join(UtilityAccount)).all()
    for bill, account in bills:
        payment = Payment(
            id=new_id("pay"),
            household_id=household.id,
            bill_id=bill.id,
            status="succeeded",
            challenge=new_challenge(),
            timestamp=t,
            biller_code="SGCC-BJ",
            account_no=account.account_no,
            bill_ref=bill.bill_ref,
            amount_fen=bill.amount_fen,
            currency=bill.currency,
            created_at=t,
            expires_at=t + 300,
            succeeded_at=t,
        )
        session.add(payment)
        session.flush()
        enqueue_writeoff(session, payment, t)


def run(db_name: str, url: str, payments: int, workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tvpay-bench-dispatch-") as tmp:
        state = Path(tmp)
        config = GatewayConfig(state_dir=state, database_url=url)
        ensure_keys(state, config.gateway_id)
        ctx = build_context(config)
        ctx.db.write(lambda s: paid_bills(s, payments))
        pem = ctx.keys.receipt_public_pem.encode()
        with utility_process(state / "utility", pem) as utility:
            ctx.db.write(lambda s: set_notify_url(s, None, utility.url))
            argv = [sys.executable, "-m", "gateway.cli", "--state-dir", str(state)]
            argv += ["--database-url", url, "dispatch", "--once", "--workers", str(workers)]
            started = time.monotonic()
            done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
            seconds = time.monotonic() - started
            tally = json.loads(done.stdout.splitlines()[-1])
            written_off = utility.state()["writeoffs"]["credited"]
        ctx.db.engine.dispose()
    return {
        "bench": "dispatch",
        "db": db_name,
        "workers": workers,
        "payments": payments,
        "delivered": tally["delivered"],
        "written_off": written_off,
        "seconds": round(seconds, 2),  # includes the process start (~1-2 s)
        "notifications_per_s": round(tally["delivered"] / seconds, 1),
    }


def fresh_pg(base: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"{base}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=500)
    parser.add_argument("--workers", default="1,4")
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    for db_name in args.db.split(","):
        for count in workers:
            if db_name == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    url = f"sqlite:///{tmp}/gateway.db"
                    print(json.dumps(run(db_name, url, args.payments, count)), flush=True)
            else:
                with pg_cluster() as base:
                    print(
                        json.dumps(run(db_name, fresh_pg(base), args.payments, count)), flush=True
                    )


if __name__ == "__main__":
    main()
