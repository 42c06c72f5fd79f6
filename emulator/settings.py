"""Settings for emulator commands: command-line flag, then ``TVPAY_*`` environment variable, then
the TOML file's table, then the default."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("/etc/tvpay/emulator.toml")


class SettingsError(ValueError):
    """A configuration file or variable is invalid; the message names it."""


def load_table(path: Path | None, table: str) -> dict[str, Any]:
    """``[table]`` (dotted names allowed) of the TOML file, or {} when there is no file."""
    path = path or Path(os.environ.get("TVPAY_EMULATOR_CONFIG", DEFAULT_CONFIG))
    if not path.exists():
        return {}
    try:
        data: Any = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from None
    for part in table.split("."):
        data = data.get(part, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def resolve(
    flags: Mapping[str, Any], defaults: Mapping[str, Any], env_prefix: str, table: Mapping[str, Any]
) -> dict[str, Any]:
    """Each setting in ``defaults`` from the first source that has it, converted to the
    default's type (``None`` defaults stay text)."""
    out: dict[str, Any] = {}
    for name, default in defaults.items():
        value = flags.get(name)
        if value is None:
            env = os.environ.get(f"{env_prefix}{name.upper()}")
            value = env if env is not None else table.get(name, default)
        if value is not None and default is not None and not isinstance(value, type(default)):
            try:
                value = type(default)(value)
            except (TypeError, ValueError):
                raise SettingsError(
                    f"setting {name}={value!r} must be a {type(default).__name__}"
                ) from None
        out[name] = value
    return out
