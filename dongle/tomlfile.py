"""Reading a TOML configuration file whose ``[table] key`` pairs name flat settings.

Shared by the daemon's and the staff tool's configuration: each passes its own table of known
keys and its own error type; converting the values stays with each caller.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_settings(
    path: Path, keys: Mapping[tuple[str, str], str], error: type[Exception]
) -> dict[str, Any]:
    """The raw values in ``path``, by setting name; ``error`` for anything unreadable or unknown."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read the configuration {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"the configuration {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for table, entries in data.items():
        if not isinstance(entries, dict):
            raise error(f"{path}: top-level key {table!r} must be a [table]")
        for key, value in entries.items():
            name = keys.get((table, key))
            if name is None:
                raise error(f"{path}: unknown setting [{table}] {key}: remove or fix it")
            values[name] = value
    return values
