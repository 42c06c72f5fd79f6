"""Runs a scenario against a running emulator through its automation API."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from emulator.automation.client import AutomationClient, AutomationClientError
from emulator.scenario.model import Scenario, ScenarioError, Step


@dataclass(frozen=True)
class StepResult:
    step: Step
    ok: bool
    elapsed_ms: int
    detail: str


def _variables(client: AutomationClient) -> dict[str, str]:
    demo = client.where().get("demo", {})
    return {"$pin": str(demo.get("pin", "")), "$household": str(demo.get("household_no", ""))}


def _expand_keys(keys: tuple[str, ...], variables: dict[str, str]) -> list[str]:
    expanded: list[str] = []
    for key in keys:
        if key.startswith("$"):
            value = variables.get(key)
            if not value:
                raise ScenarioError(f"unknown variable {key}: use $pin or $household")
            expanded.extend(value)
        else:
            expanded.append(key)
    return expanded


def _act(client: AutomationClient, step: Step, variables: dict[str, str]) -> None:
    arg = step.argument
    actions: dict[str, Callable[[], Any]] = {
        "press": lambda: client.press(*_expand_keys(arg, variables)),
        "plug": lambda: client.plug(arg),
        "unplug": lambda: client.unplug(arg),
        "clear_faults": lambda: client.clear_faults(arg),
        "fault": lambda: client.fault(
            arg["kind"],
            arg.get("serial", "demo"),
            **{k: v for k, v in arg.items() if k not in ("kind", "serial")},
        ),
        "network": lambda: client.network(arg["mode"], int(arg.get("delay_ms", 0))),
        "gateway": client.restart_gateway,
        "daemon": lambda: {
            "kill": client.kill_daemon,
            "start": client.start_daemon,
            "restart": client.restart_daemon,
        }[arg](),
    }
    assert step.action is not None
    actions[step.action]()


def run_step(client: AutomationClient, step: Step, variables: dict[str, str]) -> StepResult:
    started = time.monotonic()
    try:
        if step.action is not None:
            _act(client, step, variables)
        detail = "done"
        if step.expect is not None:
            state = client.wait(
                screen=step.expect.screen, text=step.expect.text, timeout=step.expect.timeout
            )
            detail = f"screen {state.get('screen')}"
    except (AutomationClientError, ScenarioError) as exc:
        return StepResult(step, False, round((time.monotonic() - started) * 1000), str(exc))
    return StepResult(step, True, round((time.monotonic() - started) * 1000), detail)


def run_scenario(
    scenario: Scenario, client: AutomationClient, *, out: IO[str] = sys.stdout
) -> list[StepResult]:
    """Run every step in order, stopping at the first failure; one line per step on ``out``."""
    variables = _variables(client)
    results: list[StepResult] = []
    total = len(scenario.steps)
    out.write(f"scenario {scenario.name!r}: {total} steps\n")
    for step in scenario.steps:
        result = run_step(client, step, variables)
        results.append(result)
        mark = "ok  " if result.ok else "FAIL"
        out.write(
            f"{mark} step {step.number}/{total} {step.describe()}"
            f" -> {result.detail} ({result.elapsed_ms} ms)\n"
        )
        out.flush()
        if not result.ok:
            break
    return results
