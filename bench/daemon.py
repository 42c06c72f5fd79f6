"""Benchmark of tvpay-dongled: client library -> daemon -> virtual dongle over the virtual cable.

Prints one JSON object per line: PING round trips/s with p50/p99 latency, signed payment
authorizations/s, and the daemon's RSS and idle CPU (from /proc). Targets (issue 4):
>= 2,000 PING/s with p50 <= 0.5 ms, >= 1,000 signatures/s, RSS <= 40 MB, idle CPU ~0.

A signature is committed durably by the dongle before it is answered, so signatures/s depends on
the disk holding the dongle's state. Everything is measured twice, labelled ``storage``: with the
state on the normal disk ("disk") and on tmpfs ("tmpfs", /dev/shm, where a flush costs nothing).
Each time the same operations also run straight over the cable with ``DongleLink`` ("path":
"direct"), so the daemon's own cost is the difference from "path": "daemon".
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dongle import pin_client
from protocol.messages import Command
from tests.daemon.harness import provision_via_daemon, start_daemon
from tests.fixtures.dongles import (
    open_link,
    payment_fields,
    pin_token,
    provision,
    running_cable,
    sign_payment,
)

PINGS = 5000
SIGNATURES = 2000
IDLE_SECONDS = 3.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STORAGE = {"disk": "/var/tmp", "tmpfs": "/dev/shm"}


def emit(**record: object) -> None:
    print(json.dumps({"bench": "daemon", **record}), flush=True)


def bench_ping(ping: Callable[[], object], **labels: str) -> None:
    for _ in range(200):  # warm-up: connections, caches
        ping()
    latencies = []
    start = time.perf_counter()
    for _ in range(PINGS):
        t0 = time.perf_counter()
        ping()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    emit(
        metric="ping",
        **labels,
        round_trips=PINGS,
        per_second=round(PINGS / elapsed),
        p50_ms=round(cuts[49] * 1000, 3),
        p99_ms=round(cuts[98] * 1000, 3),
    )


def bench_sign(sign: Callable[[dict], object], **labels: str) -> None:  # type: ignore[type-arg]
    requests = [payment_fields() for _ in range(SIGNATURES)]
    start = time.perf_counter()
    for fields in requests:
        sign(fields)
    elapsed = time.perf_counter() - start
    emit(
        metric="sign_payment",
        **labels,
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


def through_daemon(root: str, storage: str, *, resources: bool) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-dongled-", dir=root) as tmp,
        running_cable(1, state_dir=Path(tmp) / "dongles") as cable,
    ):
        daemon = start_daemon(Path(tmp), cable)
        try:
            with daemon.client("bench") as client:
                dongle = provision_via_daemon(client)
                bench_ping(lambda: client.ping(b"ping"), path="daemon", storage=storage)
                token = pin_client.obtain_pin_token(client, "246813", dongle.key)
                with client.acquire():
                    bench_sign(
                        lambda f: client.sign_payment(f, pin_client.payment_pin_auth(token, f)),
                        path="daemon",
                        storage=storage,
                    )
            if resources:
                bench_resources(daemon.process.pid)
        finally:
            daemon.stop()


def direct(root: str, storage: str) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-dongle-", dir=root) as tmp,
        running_cable(1, state_dir=Path(tmp)) as cable,
        open_link(cable.backend()) as link,
    ):
        provision(link)
        bench_ping(
            lambda: link.call(Command.PING, {"data": b"ping"}), path="direct", storage=storage
        )
        token = pin_token(link)
        bench_sign(lambda f: sign_payment(link, token, f), path="direct", storage=storage)


def main() -> int:
    emit(metric="machine", cpus=os.cpu_count(), load_1m=round(os.getloadavg()[0], 2))
    for storage, root in STORAGE.items():
        if not os.path.isdir(root):
            emit(metric="sign_payment", storage=storage, skipped=f"{root} does not exist")
            continue
        through_daemon(root, storage, resources=storage == "disk")
        direct(root, storage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
