"""`tvpay-emulator scenario FILE [--automation URL]`: run a scenario against a running emulator."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from emulator.automation.client import AutomationClient, AutomationClientError
from emulator.scenario.model import ScenarioError, load_scenario
from emulator.scenario.runner import run_scenario

DEFAULT_AUTOMATION = "http://127.0.0.1:8765"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scenario",
        help="run a scenario file (keys, faults, expected screens) against a running emulator",
        description="Run a TOML scenario against `tvpay-emulator up`. Exit 0 when every step "
        "passed, 1 when one failed, 2 when the file is invalid. See docs/emulator.md.",
    )
    parser.add_argument(
        "file", type=Path, help="the scenario (TOML), e.g. scenarios/pay-electricity.toml"
    )
    parser.add_argument(
        "--automation",
        default=None,
        help=f"automation API URL (env TVPAY_AUTOMATION_URL, default {DEFAULT_AUTOMATION})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per step is the output
    url = args.automation or os.environ.get("TVPAY_AUTOMATION_URL") or DEFAULT_AUTOMATION
    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        print(f"tvpay-emulator scenario: {exc}", file=sys.stderr)
        return 2
    with AutomationClient(url) as client:
        try:
            results = run_scenario(scenario, client)
        except AutomationClientError as exc:
            print(f"tvpay-emulator scenario: {exc}", file=sys.stderr)
            return 1
    passed = bool(results) and all(r.ok for r in results) and len(results) == len(scenario.steps)
    print(f"scenario {scenario.name!r}: {'passed' if passed else 'FAILED'}")
    return 0 if passed else 1
