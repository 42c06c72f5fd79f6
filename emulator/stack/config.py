"""Settings of `tvpay-emulator up`: defaults, then a TOML file, then ``TVPAY_*`` env, then flags.

[emulator]
state_dir = "/home/me/tvpay-demo"   # kept between runs; default: a fresh temp dir
seed = 7                            # repeatable runs; default: a random seed, printed
automation_port = 8765
headless = false                    # forced on when there is no display
factory_dongles = 0                 # factory-fresh dongles for a staff demo
timing = "default"                  # or "hardware": dongle timing like real hardware
households = 3
language = "zh_CN"
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

TIMINGS = ("default", "hardware")
LANGUAGES = ("zh_CN", "zh_TW", "en")


class StackConfigError(ValueError):
    """A setting of the emulator is malformed; the message names it and where it came from."""


@dataclass(frozen=True)
class StackConfig:
    state_dir: str = ""
    seed: int | None = None
    automation_host: str = "127.0.0.1"
    automation_port: int = 8765
    headless: bool = False
    factory_dongles: int = 0
    timing: str = "default"
    households: int = 3
    language: str = "zh_CN"


_ENV = {
    "state_dir": "TVPAY_EMULATOR_STATE_DIR",
    "seed": "TVPAY_EMULATOR_SEED",
    "automation_host": "TVPAY_AUTOMATION_HOST",
    "automation_port": "TVPAY_AUTOMATION_PORT",
    "headless": "TVPAY_EMULATOR_HEADLESS",
    "factory_dongles": "TVPAY_EMULATOR_FACTORY_DONGLES",
    "timing": "TVPAY_EMULATOR_TIMING",
    "households": "TVPAY_EMULATOR_HOUSEHOLDS",
    "language": "TVPAY_LANGUAGE",
}
_RANGES = {
    "automation_port": (0, 65535),
    "factory_dongles": (0, 16),
    "households": (1, 1000),
    "seed": (0, 2**63 - 1),
}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = {f.name: f.type for f in fields(StackConfig)}[name]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return text in ("1", "true", "yes", "on")
        raise StackConfigError(f"{name} in {source} must be true or false, not {value!r}")
    if kind in ("int", "int | None"):
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise StackConfigError(f"{name} in {source} must be a whole number") from None
        low, high = _RANGES[name]
        if not low <= number <= high:
            raise StackConfigError(f"{name} in {source} must be between {low} and {high}")
        return number
    if not isinstance(value, str):
        raise StackConfigError(f"{name} in {source} must be text")
    return value


def _validate(config: StackConfig) -> StackConfig:
    if config.timing not in TIMINGS:
        raise StackConfigError(f"timing must be one of {', '.join(TIMINGS)}, not {config.timing!r}")
    if config.language not in LANGUAGES:
        raise StackConfigError(
            f"language must be one of {', '.join(LANGUAGES)}, not {config.language!r}"
        )
    return config


def load_stack_config(
    path: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any]
) -> StackConfig:
    values: dict[str, Any] = {}
    if path is not None:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("emulator", {})
        except OSError as exc:
            raise StackConfigError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise StackConfigError(f"{path} is not valid TOML: {exc}") from None
        unknown = sorted(set(table) - set(_ENV))
        if unknown:
            raise StackConfigError(f"{path}: unknown settings {', '.join(unknown)}")
        values.update({k: _coerce(k, v, str(path)) for k, v in table.items()})
    for name, var in _ENV.items():
        if env.get(var):
            values[name] = _coerce(name, env[var], var)
    values.update(
        {k: _coerce(k, v, "the command line") for k, v in overrides.items() if v is not None}
    )
    return _validate(replace(StackConfig(), **values))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with an [emulator] table")
    parser.add_argument(
        "--state-dir", help="keep state here between runs (default: a fresh temp dir)"
    )
    parser.add_argument("--seed", help="seed for repeatable runs (default: random, printed)")
    parser.add_argument("--automation-host", help="automation API address (default 127.0.0.1)")
    parser.add_argument(
        "--automation-port", help="automation API port (default 8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--headless",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="no window even with a display (the web remote still works)",
    )
    parser.add_argument(
        "--factory-dongles", help="extra factory-fresh dongles for a staff demo (default 0)"
    )
    parser.add_argument("--timing", choices=TIMINGS, help="dongle timing profile")
    parser.add_argument("--households", help="demo households to create (default 3)")
    parser.add_argument("--language", choices=LANGUAGES, help="TV app language (default zh_CN)")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in _ENV}
