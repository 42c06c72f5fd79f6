"""Scenario files are checked before anything runs: the shipped ones load, bad ones are refused
with the file and step named, and the command exits 2 for them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from emulator.scenario.model import ScenarioError, load_scenario
from tests.e2e.stack import clean_env, tool

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("name", ["pay-electricity.toml", "unplug-then-pay.toml"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / name)
    assert scenario.steps and scenario.steps[-1].expect is not None


def test_pin_placeholder_is_kept_and_digit_strings_are_split(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[step]]\npress = "$pin"\n[[step]]\npress = "123"\n', encoding="utf-8")
    first, second = load_scenario(path).steps
    assert first.argument == ("$pin",)
    assert second.argument == ("1", "2", "3")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[step]]\npress = "ok"\nunplug = "demo"\n', "one action per step"),
        ('[[step]]\nexpect = { colour = "red" }\n', "'expect' must be a table"),
        ('[[step]]\nnetwork = { mode = "sideways" }\n', "mode = up, down or slow"),
        ('[[step]]\ndaemon = "explode"\n', "'daemon' is"),
        ('[[step]]\nexpect = { screen = "home", timeout = 0 }\n', "'timeout'"),
        ('name = "x"\n', "no steps"),
        ("[[step]\n", "not valid TOML"),
    ],
)
def test_bad_scenarios_are_refused_with_the_step(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_the_command_exits_2_for_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[step]]\nwobble = 1\n", encoding="utf-8")
    done = subprocess.run(
        [tool("tvpay-emulator"), "scenario", str(path), "--automation", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 2
    assert "step 1" in done.stderr and "wobble" in done.stderr
