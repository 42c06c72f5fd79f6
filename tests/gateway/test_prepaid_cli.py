"""``tvpay-gateway prepaid rules set`` and ``prepaid meter add|list`` as real processes, and the
demo data's prepaid meters: bad input is a one-line message and exit 2, never a traceback, and
nothing is written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "gateway.cli"]
TARIFF = '[{"upto_wh": 2160000, "price_milli_fen_per_kwh": 56030}, {"upto_wh": null, "price_milli_fen_per_kwh": 86030}]'


def run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--state-dir", str(state), *args], capture_output=True, text=True, timeout=120
    )


def test_the_demo_household_gets_one_meter_of_each_kind(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run(state, "init").returncode == 0
    assert stat.S_IMODE(os.stat(state / "vending.key").st_mode) == 0o600
    demo = run(state, "demo-data", "--households", "2", "--seed", "7")
    assert demo.returncode == 0, demo.stderr
    first, second = (json.loads(line) for line in demo.stdout.splitlines())
    assert [m["kind"] for m in first["prepaid"]] == ["remote", "card", "token"]
    assert second["prepaid"] == []
    listed = run(state, "prepaid", "meter", "list").stdout.splitlines()
    assert sorted(line.split("\t")[3] for line in listed) == sorted(
        m["account_no"] for m in first["prepaid"]
    )


def test_rules_and_meters_refuse_bad_input_with_a_message(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run(state, "init").returncode == 0
    assert run(state, "demo-data", "--households", "1").returncode == 0
    account = run(state, "demo-data", "--households", "1", "--seed", "3")
    power = next(a for a in json.loads(account.stdout)["accounts"] if a["utility"] == "electricity")
    biller = run(state, "prepaid", "meter", "list").stdout.split("\t")[2]
    cases = [
        (("prepaid", "rules", "set", biller, "--tariff", "[]"), "1 to 8 tiers"),
        (("prepaid", "rules", "set", biller, "--tariff", "{"), "not JSON"),
        (("prepaid", "rules", "set", "NOPE", "--tariff", TARIFF), "no biller NOPE"),
        (
            ("prepaid", "rules", "set", biller, "--tariff", TARIFF, "--min-fen", "999"),
            "multiples",
        ),
        (
            ("prepaid", "meter", "add", "0000", "--kind", "remote", "--meter-no", "X"),
            "no electricity account",
        ),
        (
            (
                "prepaid",
                "meter",
                "add",
                power["account_no"],
                "--kind",
                "token",
                "--meter-no",
                "01234567890",
                "--sgc",
                "1",
                "--ti",
                "1",
                "--krn",
                "1",
            ),
            "check digit",
        ),
        (
            (
                "prepaid",
                "meter",
                "add",
                power["account_no"],
                "--kind",
                "card",
                "--meter-no",
                "000011112222",
            ),
            "--card-serial",
        ),
    ]
    before = run(state, "prepaid", "meter", "list").stdout
    for args, words in cases:
        result = run(state, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert run(state, "prepaid", "meter", "list").stdout == before
    added = run(
        state,
        "prepaid",
        "meter",
        "add",
        power["account_no"],
        "--kind",
        "token",
        "--meter-no",
        "01234567897",
        "--sgc",
        "123456",
        "--ti",
        "1",
        "--krn",
        "1",
    )
    assert added.returncode == 0, added.stderr
    again = run(
        state,
        "prepaid",
        "meter",
        "add",
        power["account_no"],
        "--kind",
        "remote",
        "--meter-no",
        "X1",
    )
    assert again.returncode == 2 and "already has a prepaid meter" in again.stderr
