"""Gateway throughput: complete payments per second (create + dongle signature + authorize, over
real HTTP against `tvpay-gateway serve`) with N concurrent clients, p50/p99 latency of a complete
payment, and in the same run the raw single-row commit rate of the same database.

Prints one JSON object per line, per database. Target: payments/s >= 0.25 x raw commits/s.
Usage: .venv/bin/python bench/gateway.py [--clients 8] [--seconds 5] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import GatewayConfig, write_config  # noqa: E402
from gateway.context import build_context  # noqa: E402
from gateway.db.engine import make_engine  # noqa: E402
from gateway.keys import ensure_keys  # noqa: E402
from protocol.pki import load_private_key_pem, private_key_pem  # noqa: E402
from tests.gateway.helpers import GatewayUnderTest, Manufacturer, TestDongle  # noqa: E402
from tests.gateway.pgcluster import pg_cluster  # noqa: E402


def raw_commit_rate(url: str, seconds: float) -> float:
    """Single-row INSERT + COMMIT in a loop from one client, with the gateway's engine settings."""
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER, v TEXT)"))
    count, deadline = 0, time.monotonic() + seconds
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            conn.execute(text("INSERT INTO bench_commit VALUES (:i, 'x')"), {"i": count})
            conn.commit()
            count += 1
    engine.dispose()
    return count / seconds


@dataclass(frozen=True)
class ClientPlan:
    """What one client needs, picklable so it can run in its own process."""

    base: str
    token: str
    dongle_id: str
    key_rev: int
    key_pem: bytes
    counter: int
    bills: list[tuple[str, int]]


@dataclass
class ClientResult:
    began: float = 0.0
    ended: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def pay_bills(plan: ClientPlan, start: float, stop: float) -> ClientResult:
    """Create → sign the fresh challenge → authorize, bill after bill, from ``start`` to ``stop``.

    One HTTP connection pool per client, as separate boxes would have.
    """
    dongle = TestDongle.payment_signer(
        plan.dongle_id, load_private_key_pem(plan.key_pem), plan.key_rev, plan.counter
    )
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {plan.token}"
    result = ClientResult()
    time.sleep(max(0.0, start - time.time()))  # all clients begin together
    result.began = time.time()
    for bill_id, amount_fen in plan.bills:
        if time.time() > stop:
            break
        t0 = time.perf_counter()
        created = http.post(
            f"{plan.base}/api/v1/payments",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"bill_id": bill_id, "amount_fen": amount_fen, "currency": "CNY"},
            timeout=30,
        )
        if created.status_code != 201:
            result.errors.append(created.text)
            break
        body = created.json()
        answer = http.post(
            f"{plan.base}/api/v1/payments/{body['payment_id']}/authorize",
            json=dongle.sign_payment(body["sign_fields"]),
            timeout=30,
        )
        if answer.status_code != 200:
            result.errors.append(answer.text)
            break
        result.latencies.append(time.perf_counter() - t0)
    result.ended = time.time()
    return result


def run_clients(
    plans: list[ClientPlan], seconds: float, mode: str
) -> tuple[list[float], list[str], float]:
    """Run every plan at once in threads of this process or in processes of their own.

    Threads share this interpreter's GIL with each other's signing and HTTP parsing, so they
    measure the clients as much as the gateway; processes are the honest default.
    """
    # Aim to start once every process has imported everything; the rate is taken over the
    # span the clients actually ran, so a late starter cannot flatter it.
    start = time.time() + (3.0 if mode == "processes" else 0.2)
    stop = start + seconds
    if mode == "processes":
        context = multiprocessing.get_context("spawn")
        with context.Pool(len(plans)) as pool:
            results = pool.starmap(pay_bills, [(p, start, stop) for p in plans])
    else:
        with ThreadPoolExecutor(len(plans)) as pool:
            results = list(pool.map(lambda p: pay_bills(p, start, stop), plans))
    elapsed = max(r.ended for r in results) - min(r.began for r in results)
    latencies = [t for r in results for t in r.latencies]
    return latencies, [e for r in results for e in r.errors], elapsed


SERVE = ["-m", "gateway.cli"]  # what runs `serve`; bench/ledger.py swaps in its ledger-less twin


def run_backend(
    name: str,
    url: str,
    clients: int,
    seconds: float,
    workers: int,
    mode: str,
    serve: list[str] = SERVE,
) -> dict:
    state = Path(tempfile.mkdtemp(prefix=f"tvpay-bench-{name}-"))
    manufacturer = Manufacturer.create(state)
    config = GatewayConfig(
        state_dir=state, database_url=url, manufacturer_ca=(manufacturer.ca_path,)
    )
    ensure_keys(state, config.gateway_id)
    ctx = build_context(config)
    write_config(replace(config))
    proc = subprocess.Popen(
        [
            sys.executable,
            *serve,
            "--state-dir",
            str(state),
            "serve",
            "--port",
            "0",
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    bills_each = 480  # 40 accounts' year of bills: more than a client pays in --seconds
    try:
        base = proc.stdout.readline().split()[-1]
        gw = GatewayUnderTest.setup(base, ctx, manufacturer)
        plans = []
        for _ in range(clients):
            dongle, token, _bills = gw.paying_household(months=1)
            household = gw.call("GET", "/api/v1/household", token).json()["household_no"]
            for _ in range(-(-bills_each // 12)):  # a year of bills per account
                gw.bills(household, months=12)
            unpaid = gw.call("GET", "/api/v1/bills", token).json()["bills"]
            plans.append(
                ClientPlan(
                    base=base,
                    token=token,
                    dongle_id=dongle.dongle_id,
                    key_rev=dongle.key_rev,
                    key_pem=private_key_pem(dongle.key),
                    counter=dongle.counter,
                    bills=[(b["bill_id"], b["amount_fen"]) for b in unpaid[:bills_each]],
                )
            )
        latencies, errors, elapsed = run_clients(plans, seconds, mode)
    finally:
        proc.terminate()
        proc.wait(10)
    raw = raw_commit_rate(url, 2.0)
    rate = len(latencies) / elapsed
    ordered = sorted(latencies) or [0.0]
    return {
        "bench": "gateway",
        "db": name,
        "workers": workers,
        "clients": clients,
        "client_mode": mode,
        "payments": len(latencies),
        "payments_per_s": round(rate, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "raw_commits_per_s": round(raw, 1),
        "ratio": round(rate / raw, 3) if raw else None,
        "target_ratio": 0.25,
        "errors": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument(
        "--client-mode",
        choices=("processes", "threads"),
        default="processes",
        help="one process per client (default) or threads of the benchmark process",
    )
    args = parser.parse_args()
    os.umask(0o077)
    for name in args.db.split(","):
        if name == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp(prefix='tvpay-bench-db-')}/gateway.db"
            print(
                json.dumps(run_backend(name, url, args.clients, args.seconds, 1, args.client_mode)),
                flush=True,
            )
        else:
            with pg_cluster() as server:
                admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text("CREATE DATABASE bench"))
                admin.dispose()
                result = run_backend(
                    name,
                    f"{server}/bench",
                    args.clients,
                    args.seconds,
                    args.pg_workers,
                    args.client_mode,
                )
                print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
