"""Reconciling a large utility statement: ``tvpay-gateway reconcile`` as its own process on a
statement of N lines (default 1,000,000) generated on the fly, against a gateway database that
holds none of them (every line is looked up, in batches, and reported as missing here: the
slowest path). Reports wall time and the process's peak RSS.

Prints one JSON object per line. Usage: .venv/bin/python bench/reconcile.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-01-15"
START = 1768435200  # 2026-01-15T00:00:00Z
HEADER = "utility_ref,payment_id,account_no,bill_ref,amount_fen,currency,written_off_at\n"


def write_statement(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(HEADER)
        for i in range(lines):
            out.write(
                f"UT{i:016x},pay_{i:032x},{1000000000 + i % 90000},E-2025{i % 12 + 1:02d},"
                f"{1000 + i % 50000},CNY,{START + i % 86400}\n"
            )


def run(lines: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tvpay-bench-reconcile-") as tmp:
        state = Path(tmp) / "gateway"
        base = [sys.executable, "-m", "gateway.cli", "--state-dir", str(state)]
        subprocess.run([*base, "init"], check=True, capture_output=True, cwd=ROOT)
        statement = Path(tmp) / f"{DAY}.csv"
        write_statement(statement, lines)
        started = time.perf_counter()
        done = subprocess.run(
            [*base, "reconcile", "--biller", "SGCC-BJ", "--date", DAY, str(statement)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        seconds = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if done.returncode not in (0, 1):
            raise SystemExit(f"reconcile failed: {done.stderr.strip()}")
        return {
            "bench": "reconcile",
            "lines": lines,
            "seconds": round(seconds, 2),
            "lines_per_s": round(lines / seconds),
            # ru_maxrss of the largest child so far: init's is far smaller than reconcile's.
            "peak_rss_mb": round(peak_kib / 1024, 1),
            "summary": done.stdout.splitlines()[0][:200],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(run(args.lines)), flush=True)


if __name__ == "__main__":
    main()
