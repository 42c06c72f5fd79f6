"""`tvpay-emulator cable`: what its help and docs/emulator.md promise about the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest

from tests.fixtures.dongles import ROOT, CableProcess, running_cable


@pytest.fixture(scope="module")
def cable() -> Iterator[CableProcess]:
    with running_cable(1, seed=11) as running:
        yield running


def _cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", "cable", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_address_comes_from_the_documented_variable(cable: CableProcess) -> None:
    done = _cli("list", env={**os.environ, "TVPAY_EMULATOR_CABLE_ADDRESS": cable.address})
    assert done.returncode == 0 and cable.serials[0] in done.stdout, done.stderr


def test_help_names_every_action_and_the_variable() -> None:
    usage = _cli("--help").stdout
    for action in ("list", "plug", "unplug", "clear-faults", "fault", "add"):
        assert f"    {action} " in usage, action
    assert "TVPAY_EMULATOR_CABLE_ADDRESS" in usage
