"""End-to-end payment latency: OK on the confirm screen (PIN typed) to the receipt on screen.

Runs the whole box (`tvpay-emulator up --headless`) once per dongle timing profile, imports 50
extra unpaid bills for the demo household's electricity account through `tvpay-gateway bills
import`, pays them one by one with the remote through the automation API, and prints one JSON
object per profile: p50/p95/max in milliseconds over the payments. Target: p95 <= 150 ms with the
default timing.

    .venv/bin/python bench/e2e.py [--payments 50] [--timing default]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.flows import go_home, open_account, type_pin
from tests.e2e.stack import RunningStack, clean_env, start_stack, tool

PROFILES = ("default", "hardware")


def _electricity_account(stack: RunningStack) -> tuple[str, dict[str, str]]:
    with stack.db() as db:
        row = db.execute(
            "SELECT a.id, a.biller_code, b.name, a.account_no, a.holder_name, a.address"
            " FROM utility_accounts a JOIN households h ON a.household_id = h.id"
            " JOIN billers b ON b.code = a.biller_code"
            " WHERE h.household_no = ? AND a.utility = 'electricity'",
            (stack.where["demo"]["household_no"],),
        ).fetchone()
    account_id, code, name, number, holder, address = row
    return account_id, {
        "biller_code": code,
        "biller_name": name,
        "utility": "electricity",
        "account_no": number,
        "holder_name": holder,
        "address": address,
    }


def _import_bills(stack: RunningStack, account: dict[str, str], count: int, work: Path) -> None:
    path = work / "bench-bills.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*account, "bill_ref", "period", "amount_fen", "currency", "due_date"])
        for i in range(count):
            year, month = 2015 + i // 12, 1 + i % 12
            writer.writerow(
                [
                    *account.values(),
                    f"BENCH-{year}{month:02d}",
                    f"{year}-{month:02d}",
                    1000 + i,
                    "CNY",
                    f"{year}-{month:02d}-20",
                ]
            )
    state = Path(stack.where["state_dir"]) / "gateway"
    subprocess.run(
        [tool("tvpay-gateway"), "--state-dir", str(state), "bills", "import", str(path)],
        check=True,
        capture_output=True,
        env=clean_env(),
    )


def _pay_once(stack: RunningStack, account_id: str) -> float:
    """Milliseconds from pressing OK (PIN typed) to the receipt screen being shown."""
    client = stack.client
    open_account(client, account_id)
    client.press("green")
    client.wait(screen="confirm", timeout=20)
    type_pin(client, stack.pin)
    started = time.perf_counter()
    state = client.press("ok")
    while state["screen"] != "receipt":
        if time.perf_counter() - started > 30:
            raise RuntimeError(f"no receipt after 30 s; the screen shows {state['screen']}")
        state = client.screen()
    elapsed = (time.perf_counter() - started) * 1000
    go_home(client)
    return elapsed


def run_profile(timing: str, payments: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tvpay-bench-") as work:
        state_dir = Path(work) / "state"
        args = ("--seed", "5", "--households", "1", "--timing", timing)
        with start_stack(state_dir, args=args) as stack:
            account_id, account = _electricity_account(stack)
            _import_bills(stack, account, payments + 1, Path(work))
            _pay_once(stack, account_id)  # warm-up: first TLS session, first signature
            samples = [_pay_once(stack, account_id) for _ in range(payments)]
    samples.sort()
    return {
        "bench": "e2e_confirm_to_receipt",
        "timing": timing,
        "payments": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, round(0.95 * len(samples)) - 1)], 1),
        "max_ms": round(samples[-1], 1),
        "target_p95_ms": 150 if timing == "default" else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=50)
    parser.add_argument(
        "--timing",
        action="append",
        choices=PROFILES,
        help="dongle timing profile to run (repeatable; default: all of them)",
    )
    args = parser.parse_args()
    for timing in args.timing or PROFILES:
        print(json.dumps(run_profile(timing, args.payments)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
