"""Reconciliation with the bank's settlement file: the real bank simulator process takes the
mandate debits, its ``/settlements/DAY.csv`` is the file, and ``tvpay-gateway reconcile-bank``
runs as its own process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.db.models import OutboxMessage
from gateway.reconcile.store import RESENT
from gateway.writeoff import REVERSAL_TOPIC
from tests.gateway.mandate_world import MandateWorld, Payer


def _pay(world: MandateWorld, payer: Payer, bill: dict[str, Any]) -> str:
    payment_id, auth = world.sign(payer, bill)
    answer = world.gw.authorize(payment_id, auth)
    assert answer.status_code == 200, answer.text
    return payment_id


def _reconcile_bank(world: MandateWorld, day: str, path: Path) -> dict[str, Any]:
    config = world.gw.ctx.config
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--state-dir",
            str(config.state_dir),
            "--database-url",
            config.database_url,
            "reconcile-bank",
            "--date",
            day,
            str(path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def test_bank_settlement_kinds_and_the_reversal_sent_again(
    world: MandateWorld, tmp_path: Path
) -> None:
    payer = world.payer()
    matched, refunded, disputed = (_pay(world, payer, b) for b in payer.bills)
    answer = world.gw.staff("POST", f"/payments/{refunded}/refund", json={"reason": "double"})
    assert answer.status_code == 200, answer.text
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    text = world.bank.call("GET", f"/settlements/{day}.csv").text
    header, *rows = text.splitlines()
    ours = [r for r in rows if r.split(",")[1] in (matched, refunded, disputed)]
    assert len(ours) == 3  # three debits; the reversal is still in our outbox
    edited = []
    for row in ours:
        fields = row.split(",")
        if fields[1] == disputed:
            fields[3] = "1"
        edited.append(",".join(fields))
    stranger = ours[0].split(",")
    stranger[1] = "pay_" + "f" * 32
    path = tmp_path / "settlement.csv"
    path.write_text("\n".join([header, *edited, ",".join(stranger)]) + "\n")

    report = _reconcile_bank(world, day, path)
    assert report["counts"] == {
        "matched": 2,
        "credited": 0,
        "missing_there": 1,
        "missing_here": 1,
        "mismatch": 1,
        "duplicate": 0,
    }
    kinds = {(f["kind"], f["key"]) for f in report["findings"]}
    assert kinds == {
        ("missing_there", f"reversal:{refunded}"),
        ("missing_here", "debit:pay_" + "f" * 32),
        ("mismatch", f"debit:{disputed}"),
    }
    assert report["resolved"] == 1
    message = world.gw.ctx.db.read(
        lambda s: s.query(OutboxMessage).filter_by(topic=REVERSAL_TOPIC, key=refunded).one()
    )
    assert message.delivered_at is None and message.last_error == RESENT
    assert _reconcile_bank(world, day, path)["replayed"] is True
