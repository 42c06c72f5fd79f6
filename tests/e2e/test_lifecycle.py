"""`tvpay-emulator up` as a whole: a scenario file pays a bill, Ctrl-C stops every process (the
bank simulator too), and a kept state directory starts again as the same box (same household, PIN,
dongle and bank card; nothing set up twice; the payment still there)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import requests

from emulator.stack.demo_card import DEMO_CARD_BALANCE_FEN
from emulator.stack.setup import DEMO_BILLS_DUE
from tests.e2e.stack import Ledger, clean_env, start_stack, stop_stack, tool, wait_until

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _pids(where: dict) -> list[int]:
    names = ("bank", "gateway", "utility", "dispatcher", "cable", "daemon")
    return [where[name]["pid"] for name in names]


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()
    except FileNotFoundError:
        return True


def _card_balances(where: dict) -> dict[str, int]:
    state = requests.get(where["bank"]["url"] + "/control/state", timeout=10).json()
    return {a["bank_token"]: a["balance_fen"] for a in state["accounts"]}


def test_scenario_pays_then_ctrl_c_stops_all_and_state_is_kept(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    # Seed 1's demo data leaves the demo household's power bills all paid: the set-up issues more.
    args = ("--seed", "1", "--households", "1")
    with start_stack(state_dir, args=args) as first:
        with first.db() as db:
            (unpaid_electricity,) = db.execute(
                "SELECT COUNT(*) FROM bills b JOIN utility_accounts a ON b.account_id = a.id"
                " WHERE a.utility = 'electricity' AND a.household_id IS NOT NULL"
                " AND b.status = 'unpaid'"
            ).fetchone()
        assert unpaid_electricity >= DEMO_BILLS_DUE
        assert first.where["bank"]["running"]
        card = first.where["demo"]["bank_token"]
        assert _card_balances(first.where) == {card: DEMO_CARD_BALANCE_FEN}
        before = Ledger.read(first)
        run = subprocess.run(
            [
                tool("tvpay-emulator"),
                "scenario",
                str(SCENARIOS / "pay-electricity.toml"),
                "--automation",
                first.url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "passed" in run.stdout
        paid = Ledger.read(first).newly_paid_since(before)
        assert len(paid) == 1
        children = _pids(first.where)
        assert stop_stack(first.process, signal.SIGINT) == 0
        wait_until(lambda: all(_gone(pid) for pid in children), 10, "every child to exit")

    with start_stack(state_dir, args=("--households", "1")) as second:
        assert second.where["demo"] == first.where["demo"]
        assert second.where["seed"] == 1
        assert paid <= {bill for bill, _payment in Ledger.read(second).paid_bills}
        assert _card_balances(second.where) == {card: DEMO_CARD_BALANCE_FEN}
        with second.db() as db:
            (mandates,) = db.execute("SELECT COUNT(*) FROM mandates").fetchone()
        assert mandates == 1
    setup_log = (state_dir / "logs" / "setup.log").read_text(encoding="utf-8")
    assert setup_log.count("$ tvpay-dongle") == 1, "the demo dongle was provisioned twice"
    assert setup_log.count("mandate bind") == 1, "the demo card's mandate was bound twice"
