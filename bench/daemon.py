"""Benchmark of tvpay-dongled: client library -> daemon -> virtual dongle over the virtual cable.

Prints one JSON object per line: PING round trips/s with p50/p99 latency, signed payment
authorizations/s, and the daemon's RSS and idle CPU (from /proc). Targets (issue 4):
>= 2,000 PING/s with p50 <= 0.5 ms, >= 1,000 signatures/s, RSS <= 40 MB, idle CPU ~0.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dongle import pin_client
from dongle.client import DaemonClient
from tests.daemon.harness import provision_via_daemon, start_daemon
from tests.fixtures.dongles import payment_fields, running_cable

PINGS = 5000
SIGNATURES = 2000
IDLE_SECONDS = 3.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def emit(**record: object) -> None:
    print(json.dumps({"bench": "daemon", **record}), flush=True)


def bench_ping(client: DaemonClient) -> None:
    for _ in range(200):  # warm-up: connections, caches
        client.ping(b"w")
    latencies = []
    start = time.perf_counter()
    for _ in range(PINGS):
        t0 = time.perf_counter()
        client.ping(b"ping")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    emit(
        metric="ping",
        round_trips=PINGS,
        per_second=round(PINGS / elapsed),
        p50_ms=round(cuts[49] * 1000, 3),
        p99_ms=round(cuts[98] * 1000, 3),
    )


def bench_sign(client: DaemonClient) -> None:
    token = pin_client.obtain_pin_token(client, "246813")
    requests = []
    for _ in range(SIGNATURES):
        fields = payment_fields()
        requests.append((fields, pin_client.payment_pin_auth(token, fields)))
    start = time.perf_counter()
    for fields, auth in requests:
        client.sign_payment(fields, auth)
    elapsed = time.perf_counter() - start
    emit(
        metric="sign_payment",
        signatures=SIGNATURES,
        per_second=round(SIGNATURES / elapsed),
        mean_ms=round(elapsed / SIGNATURES * 1000, 3),
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_resources(pid: int) -> None:
    before = _cpu_seconds(pid)
    time.sleep(IDLE_SECONDS)  # measuring idle CPU: the daemon must do nothing meanwhile
    idle = (_cpu_seconds(pid) - before) / IDLE_SECONDS * 100
    emit(metric="resources", rss_mb=round(_rss_mb(pid), 1), idle_cpu_percent=round(idle, 2))


def main() -> int:
    with running_cable(1) as cable, tempfile.TemporaryDirectory(prefix="bench-dongled-") as tmp:
        daemon = start_daemon(Path(tmp), cable)
        try:
            with daemon.client("bench") as client:
                provision_via_daemon(client)
                bench_ping(client)
                with client.acquire():
                    bench_sign(client)
            bench_resources(daemon.process.pid)
        finally:
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
