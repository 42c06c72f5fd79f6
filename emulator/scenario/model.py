"""Scenario files: TOML lists of steps — keys to press, faults to inject, screens to expect.

```toml
name = "Pay the electricity bill"
timeout = 15                      # default seconds for each expectation

[[step]]
expect = { screen = "home" }

[[step]]
press = ["down", "ok"]            # remote keys; a string of digits or "$pin" types them
expect = { screen = "confirm", text = "¥", timeout = 10 }

[[step]]
network = { mode = "down" }       # or: plug/unplug = "demo", fault = { kind = "drop", ... },
                                  # clear_faults = "demo", gateway = "restart",
                                  # daemon = "kill" | "start" | "restart"
```
Each step does at most one action, then checks its ``expect`` (if any). ``$pin`` and
``$household`` are replaced by the demo household's PIN and number from the running emulator.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ACTIONS = ("press", "plug", "unplug", "fault", "clear_faults", "network", "gateway", "daemon")
_EXPECT_KEYS = frozenset({"screen", "text", "timeout"})
_DAEMON_OPS = frozenset({"kill", "start", "restart"})
_NETWORK_MODES = frozenset({"up", "down", "slow"})


class ScenarioError(Exception):
    """A scenario file that cannot be run as written; the message names the file and step."""


@dataclass(frozen=True)
class Expect:
    screen: str | None
    text: str | None
    timeout: float


@dataclass(frozen=True)
class Step:
    number: int
    action: str | None
    argument: Any
    expect: Expect | None

    def describe(self) -> str:
        parts = []
        if self.action is not None:
            parts.append(f"{self.action} {_show(self.action, self.argument)}")
        if self.expect is not None:
            wanted = [f"screen={self.expect.screen}" if self.expect.screen else ""]
            wanted.append(f"text={self.expect.text!r}" if self.expect.text else "")
            parts.append("expect " + " ".join(w for w in wanted if w))
        return ", ".join(parts)


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    steps: tuple[Step, ...] = field(default_factory=tuple)


def _show(action: str, argument: Any) -> str:
    if action == "press":
        return " ".join(argument)
    if isinstance(argument, dict):
        return " ".join(f"{k}={v}" for k, v in argument.items())
    return str(argument)


def _expect(where: str, raw: Any, default_timeout: float) -> Expect:
    if not isinstance(raw, dict) or not raw or set(raw) - _EXPECT_KEYS:
        raise ScenarioError(
            f"{where}: 'expect' must be a table with 'screen' and/or 'text' (and 'timeout')"
        )
    screen, text = raw.get("screen"), raw.get("text")
    timeout = raw.get("timeout", default_timeout)
    if screen is None and text is None:
        raise ScenarioError(f"{where}: 'expect' needs a 'screen' or a 'text'")
    if not all(v is None or isinstance(v, str) for v in (screen, text)):
        raise ScenarioError(f"{where}: 'screen' and 'text' are strings")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 300:
        raise ScenarioError(f"{where}: 'timeout' is a number of seconds between 0 and 300")
    return Expect(screen, text, float(timeout))


def _press(where: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str) and raw:
        # A digit string is typed digit by digit; "$pin" stays a placeholder until run time.
        return tuple(raw) if raw.isdigit() else (raw,)
    if isinstance(raw, list) and raw and all(isinstance(k, str) and k for k in raw):
        return tuple(raw)
    raise ScenarioError(f"{where}: 'press' is a key name, a digit string, or a list of key names")


def _argument(where: str, action: str, raw: Any) -> Any:
    if action == "press":
        return _press(where, raw)
    if action in ("plug", "unplug", "clear_faults"):
        if not isinstance(raw, str) or not raw:
            raise ScenarioError(f"{where}: '{action}' is a dongle serial, or \"demo\"")
        return raw
    if action == "fault":
        if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
            raise ScenarioError(f"{where}: 'fault' is a table with at least a 'kind'")
        return dict(raw)
    if action == "network":
        if not isinstance(raw, dict) or raw.get("mode") not in _NETWORK_MODES:
            raise ScenarioError(f"{where}: 'network' is a table with mode = up, down or slow")
        return dict(raw)
    if action == "gateway":
        if raw != "restart":
            raise ScenarioError(f"{where}: 'gateway' can only be \"restart\"")
        return raw
    if raw not in _DAEMON_OPS:
        raise ScenarioError(f'{where}: \'daemon\' is "kill", "start" or "restart"')
    return raw


def _step(path: Path, number: int, raw: Any, default_timeout: float) -> Step:
    where = f"{path}: step {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a step is a table ([[step]])")
    unknown = set(raw) - {*_ACTIONS, "expect"}
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a step has one of"
            f" {', '.join(_ACTIONS)} and/or 'expect'"
        )
    actions = [a for a in _ACTIONS if a in raw]
    if len(actions) > 1:
        raise ScenarioError(f"{where}: one action per step, not {' and '.join(actions)}")
    if not actions and "expect" not in raw:
        raise ScenarioError(f"{where}: an empty step; give an action or an 'expect'")
    action = actions[0] if actions else None
    argument = _argument(where, action, raw[action]) if action else None
    expect = _expect(where, raw["expect"], default_timeout) if "expect" in raw else None
    return Step(number, action, argument, expect)


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file; raises ScenarioError naming what to fix."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read the scenario {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from exc
    unknown = set(data) - {"name", "description", "timeout", "step"}
    if unknown:
        raise ScenarioError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    timeout = data.get("timeout", 15.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 300:
        raise ScenarioError(f"{path}: 'timeout' is a number of seconds between 0 and 300")
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{path}: no steps; add [[step]] tables")
    steps = tuple(
        _step(path, number, raw, float(timeout)) for number, raw in enumerate(raw_steps, start=1)
    )
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        raise ScenarioError(f"{path}: 'name' is a string")
    return Scenario(name=name, path=path, steps=steps)
