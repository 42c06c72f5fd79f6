"""The dispatcher's "now": wall-clock time, or the Unix seconds in a clock file, so a test (or a
rehearsal) can move time forward by hours and see the retries come due without waiting."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.errors import ConfigError


class Clock:
    def __init__(self, clock_file: Path | None = None) -> None:
        self._file = clock_file

    def now(self) -> int:
        if self._file is None or not self._file.exists():
            return int(time.time())
        text = self._file.read_text(encoding="ascii", errors="replace").strip()
        if not text.isdigit():
            raise ConfigError(f"{self._file} must hold Unix seconds (digits only)")
        return int(text)
