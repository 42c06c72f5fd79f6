"""A utility whose idempotency is broken (the simulator's ``ack_twice``): a payment it already
wrote off, notified again, is written off again under a new reference. Real processes: the
gateway (HTTP), the dispatcher (``tvpay-gateway dispatch``), the utility simulator and
``tvpay-gateway reconcile``, on SQLite and PostgreSQL. Nothing sleeps: the retry the test needs
is held at the utility until the household's 查询到账 has been answered."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.emulator.utility import utility_process
from tests.gateway.helpers import GatewayUnderTest, wait_until
from tests.gateway.reconcile_env import cli, statement, utility_day
from tests.gateway.writeoff_env import BILLER, WriteoffEnv


@pytest.fixture
def env(gw: GatewayUnderTest, tmp_path: Path) -> Iterator[WriteoffEnv]:
    with utility_process(tmp_path / "utility", gw.ctx.keys.receipt_public_pem.encode()) as utility:
        running = WriteoffEnv(gw, utility, tmp_path)
        # Noon (UTC) of tomorrow: every payment made now is due, and the first write-off and
        # its retry (at most an hour apart) fall on one statement day.
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        utility.set_clock(int(datetime(*tomorrow.timetuple()[:3], 12, tzinfo=UTC).timestamp()))
        yield running


def wallet_balance(env: WriteoffEnv, token: str) -> int:
    sources = env.gw.call("GET", "/api/v1/funding-sources", token).json()["funding_sources"]
    return next(s["balance_fen"] for s in sources if s["kind"] == "wallet")


def test_a_second_writeoff_of_one_payment_is_flagged_and_moves_no_money(
    env: WriteoffEnv, tmp_path: Path
) -> None:
    payment_id, token = env.pay()
    paid_balance = wallet_balance(env, token)
    # The utility writes the payment off, but its answer is unusable: the gateway retries later.
    env.utility.control("POST", "/control/faults", {"hostile": "wrong_payment_id"})
    assert env.dispatch() == {"delivered": 0, "failed": 1}
    asked = requests.get(f"{env.utility.url}/writeoffs/{payment_id}", timeout=10).json()
    first_ref = asked["utility_ref"]
    env.utility.control("DELETE", "/control/faults")

    # The retry reaches a utility that has lost its idempotency, and waits there (slow).
    env.utility.control("POST", "/control/faults", {"ack_twice": True, "slow": 600})
    env.utility.set_clock(env.outbox(payment_id).next_attempt_at)
    retry = subprocess.Popen(
        env.dispatcher_argv("--once", "--timeout", "600", "--lease", "900"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: env.utility.state()["held"] == 1, 60, "the retry never arrived")
        # Meanwhile the household asks (查询到账): the utility's record says credited.
        checked = env.gw.call("POST", f"/api/v1/payments/{payment_id}/crediting-check", token)
        assert checked.status_code == 200, checked.text
        credited = checked.json()["payment"]
        assert (credited["status"], credited["utility_ref"]) == ("credited", first_ref)
    finally:
        env.utility.control("DELETE", "/control/faults")  # the held retry goes on
        out, err = retry.communicate(timeout=120)
    assert retry.returncode == 0 and "Traceback" not in err, err
    assert json.loads(out.splitlines()[-1]) == {"delivered": 1, "failed": 0}

    # The utility wrote it off a second time and answered a new reference …
    day = utility_day(env)
    path = tmp_path / f"{day}.csv"
    path.write_bytes(statement(env, day))
    lines = path.read_text().splitlines()[1:]
    assert [line.split(",")[1] for line in lines] == [payment_id, payment_id]
    second_ref = lines[1].split(",")[0]
    assert second_ref != first_ref and env.utility.state()["duplicates"] == 1
    # … which the gateway logged for staff as a contradiction, keeping the first and moving
    # no money.
    flagged = [line for line in err.splitlines() if "event=writeoff_ack_ignored" in line]
    assert len(flagged) == 1 and "level=error" in flagged[0], err
    assert f"payment_id={payment_id}" in flagged[0] and f"utility_ref={second_ref}" in flagged[0]
    assert env.payment(payment_id, token) == credited
    assert wallet_balance(env, token) == paid_balance
    assert env.ledger_problems() == []

    # The day's reconciliation reports the duplicate line for staff.
    done = cli(env, "reconcile", "--biller", BILLER, "--date", day, str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 matched" in done.stdout and "1 duplicate" in done.stdout, done.stdout
    assert f"duplicate\t{payment_id}\tline 3\tlisted again" in done.stdout
