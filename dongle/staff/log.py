"""Step logs: one line per event, ``key=value`` pairs, to stderr.

The stream is looked up at each write, so rich's live progress display (which redirects
stderr while it runs) prints the lines above the progress bars. Callers pass only what is
safe to log: never a PIN, a PUK, a token or a key.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

_lock = threading.Lock()
_quiet = False


def set_quiet(quiet: bool) -> None:
    """With ``quiet``, only warnings and errors are written."""
    global _quiet
    _quiet = quiet


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(ch in text for ch in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def log(event: str, level: str = "info", **fields: Any) -> None:
    if _quiet and level == "info":
        return
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    parts = [f"ts={stamp}Z", f"level={level}", f"event={event}"]
    parts.extend(f"{key}={_value(value)}" for key, value in fields.items() if value is not None)
    with _lock:
        sys.stderr.write(" ".join(parts) + "\n")
        sys.stderr.flush()
