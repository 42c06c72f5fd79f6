"""Helpers for the reconciliation tests: the real ``tvpay-gateway`` command as a process, the
utility's statement fetched over HTTP, and the database read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from gateway.db.models import Payment, Reconciliation
from gateway.writeoff import notification, signed_body
from tests.gateway.writeoff_env import WriteoffEnv


def cli(env: WriteoffEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """``tvpay-gateway ARGS`` against the test gateway's database, as its own process."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--state-dir",
            str(env.state_dir),
            "--database-url",
            env.gw.ctx.config.database_url,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def reconcile(env: WriteoffEnv, biller: str, day: str, path: Path) -> dict[str, Any]:
    done = cli(env, "reconcile", "--biller", biller, "--date", day, str(path), "--json")
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def statement(env: WriteoffEnv, day: str) -> bytes:
    answer = requests.get(f"{env.utility.url}/statements/{day}.csv", timeout=10)
    answer.raise_for_status()
    return answer.content


def utility_day(env: WriteoffEnv) -> str:
    """The day the utility is writing bills off on (its clock file, UTC)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(env.clock_file.read_text()), UTC).strftime("%Y-%m-%d")


def ack_lost(env: WriteoffEnv, payment_id: str) -> str:
    """The utility writes the payment off but its answer never reaches the gateway: the payment
    stays succeeded. Returns the utility's reference."""
    payment = env.gw.ctx.db.read(lambda s: s.get(Payment, payment_id))
    body, header = signed_body(env.gw.ctx.keys, notification(payment))
    answer = requests.post(
        f"{env.utility.url}/writeoffs",
        data=body,
        headers={"TVPay-Signature": header, "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["utility_ref"]


def payment_row(env: WriteoffEnv, payment_id: str) -> Payment:
    return env.gw.ctx.db.read(lambda s: s.get(Payment, payment_id))


def report_count(env: WriteoffEnv) -> int:
    return env.gw.ctx.db.read(lambda s: s.scalar(select(func.count()).select_from(Reconciliation)))
