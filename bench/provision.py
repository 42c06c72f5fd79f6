"""Benchmark of staff provisioning: dongles provisioned per minute, batch versus one at a time.

Runs the real stack (virtual dongles on the virtual cable, tvpay-dongled, the gateway on SQLite,
each a subprocess) and the real `tvpay-dongle` command, and prints one JSON object per line:

- ``one_at_a_time``: one `tvpay-dongle provision` run per dongle, as staff at a desk would;
- ``batch`` with ``--jobs 1``: one `tvpay-dongle batch` run, the dongles one after the other;
- ``batch`` with ``--jobs 8``: the same with the 8 dongles concurrently.

Each is measured with the emulator's instant dongles and with ``--timing hardware`` (the latency
of a real secure element: key generation ~80 ms, signatures ~40 ms, PIN checks ~20 ms).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.staff.harness import PIN, Bench, staff_bench

DONGLES = 8


def emit(**record: object) -> None:
    print(json.dumps({"bench": "provision", **record}), flush=True)


def per_minute(count: int, seconds: float) -> float:
    return round(count * 60 / seconds, 1)


def one_at_a_time(bench: Bench) -> tuple[int, float]:
    serials = bench.take(DONGLES)
    households = [bench.household() for _ in serials]
    start = time.perf_counter()
    for serial, household in zip(serials, households, strict=True):
        result = bench.tool(
            "--quiet", "provision", "--account", household, "--pin", PIN, "--serial", serial
        )
        if result.rc != 0:
            raise SystemExit(f"provision failed: {result.stderr}")
    return len(serials), time.perf_counter() - start


def batch(bench: Bench, jobs: int, workdir: Path) -> tuple[int, float]:
    serials = bench.take(DONGLES)
    source = workdir / f"batch-{jobs}.csv"
    rows = [f"{serial},{bench.household()}" for serial in serials]
    source.write_text("\n".join(["serial,account", *rows]) + "\n", encoding="utf-8")
    start = time.perf_counter()
    result = bench.tool(
        "--quiet",
        "--json",
        "batch",
        str(source),
        "--jobs",
        str(jobs),
        "--out",
        str(workdir / f"result-{jobs}.csv"),
    )
    seconds = time.perf_counter() - start
    if result.rc != 0:
        raise SystemExit(f"batch failed: {result.stdout} {result.stderr}")
    return len(serials), seconds


def run(timing: str | None) -> None:
    label = timing or "instant"
    with (
        staff_bench(count=DONGLES * 3, timing=timing) as bench,
        tempfile.TemporaryDirectory(prefix="tvpay-bench-") as tmp,
    ):
        count, seconds = one_at_a_time(bench)
        emit(
            mode="one_at_a_time",
            timing=label,
            dongles=count,
            seconds=round(seconds, 2),
            per_minute=per_minute(count, seconds),
        )
        for jobs in (1, DONGLES):
            count, seconds = batch(bench, jobs, Path(tmp))
            emit(
                mode="batch",
                jobs=jobs,
                timing=label,
                dongles=count,
                seconds=round(seconds, 2),
                per_minute=per_minute(count, seconds),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing", choices=("instant", "hardware", "both"), default="both")
    args = parser.parse_args()
    for timing in ("instant", "hardware"):
        if args.timing in (timing, "both"):
            run(None if timing == "instant" else "hardware")


if __name__ == "__main__":
    main()
