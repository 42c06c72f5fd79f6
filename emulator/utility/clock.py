"""The simulator's notion of "now": wall-clock time, or the Unix seconds written in a clock file.

A test that wants the utility "down for hours" advances the file instead of waiting.
"""

from __future__ import annotations

import time
from pathlib import Path


class ClockFileError(ValueError):
    """The clock file does not hold a Unix time in seconds."""


class Clock:
    def __init__(self, clock_file: Path | None = None) -> None:
        self._file = clock_file

    def now(self) -> int:
        if self._file is None or not self._file.exists():
            return int(time.time())
        text = self._file.read_text(encoding="ascii", errors="replace").strip()
        if not text.isdigit():
            raise ClockFileError(
                f"{self._file} must hold Unix seconds (digits only), not {text[:20]!r}"
            )
        return int(text)
