"""Gateway throughput: complete payments per second (create + dongle signature + authorize, over
real HTTP against `tvpay-gateway serve`) with N concurrent clients, p50/p99 latency of a complete
payment, and in the same run the raw single-row commit rate of the same database.

Prints one JSON object per line, per database. Target: payments/s >= 0.25 x raw commits/s.
Usage: .venv/bin/python bench/gateway.py [--clients 8] [--seconds 5] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import GatewayConfig, write_config  # noqa: E402
from gateway.context import build_context  # noqa: E402
from gateway.db.engine import make_engine  # noqa: E402
from gateway.keys import ensure_keys  # noqa: E402
from tests.gateway.helpers import GatewayUnderTest, Manufacturer  # noqa: E402
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


def run_backend(name: str, url: str, clients: int, seconds: float, workers: int) -> dict:
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
            "-m",
            "gateway.cli",
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
    try:
        base = proc.stdout.readline().split()[-1]
        gw = GatewayUnderTest.setup(base, ctx, manufacturer)
        bills_each = 400
        payers = [gw.paying_household(months=1) for _ in range(clients)]
        for _dongle, token, _bills in payers:  # eight accounts' year of bills to pay through
            household = gw.call("GET", "/api/v1/household", token).json()["household_no"]
            for _ in range(8):
                gw.bills(household, months=12)
        latencies: list[float] = []
        lock = threading.Lock()
        stop = time.monotonic() + seconds
        errors: list[str] = []

        def client(payer: tuple) -> None:
            dongle, token, _ = payer
            # One HTTP connection pool per client thread, as separate boxes would have.
            local = GatewayUnderTest(base, ctx, manufacturer, gw.staff_token, requests.Session())
            unpaid = local.call("GET", "/api/v1/bills", token).json()["bills"]
            for bill in unpaid[:bills_each]:
                if time.monotonic() > stop:
                    return
                t0 = time.perf_counter()
                created = local.create_payment(token, bill, key=str(uuid.uuid4()))
                if created.status_code != 201:
                    errors.append(created.text)
                    return
                body = created.json()
                answer = local.authorize(
                    body["payment_id"], dongle.sign_payment(body["sign_fields"])
                )
                if answer.status_code != 200:
                    errors.append(answer.text)
                    return
                with lock:
                    latencies.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=client, args=(p,)) for p in payers]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
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
    args = parser.parse_args()
    os.umask(0o077)
    for name in args.db.split(","):
        if name == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp(prefix='tvpay-bench-db-')}/gateway.db"
            print(json.dumps(run_backend(name, url, args.clients, args.seconds, 1)), flush=True)
        else:
            with pg_cluster() as server:
                admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text("CREATE DATABASE bench"))
                admin.dispose()
                result = run_backend(
                    name, f"{server}/bench", args.clients, args.seconds, args.pg_workers
                )
                print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
