"""Structured logs: one line per event, ``key=value`` pairs, to stderr (journald keeps them).

Callers pass only what is safe to log: never a PIN, a key, a token or a full account number.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

_lock = threading.Lock()
_stream: TextIO = sys.stderr


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(ch in text for ch in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def log(event: str, level: str = "info", **fields: Any) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    parts = [f"ts={stamp}Z", f"level={level}", f"event={event}"]
    parts.extend(f"{key}={_value(value)}" for key, value in fields.items())
    with _lock:
        _stream.write(" ".join(parts) + "\n")
        _stream.flush()
