"""TVPay's log lines: one line per event, ``key=value``, to stderr (journald keeps them).

    ts=2026-01-31T08:00:00Z level=info logger=tvpay.dongled event=client_gone conn=3 reason=refused

Every program calls ``configure`` once at start-up and logs either through ``EventLog``
(``log("client_gone", conn=3)``, values quoted here) or a ``logging.Logger`` whose message is
already ``event=... key=value`` pairs. Callers pass only what is safe to log: never a PIN, a PUK,
a key, a token or a full account number.

Only the ``logging`` module is used: no streams are opened here.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def quote(value: Any) -> str:
    """``value`` as one token: quoted, with escapes, when it is empty or has spaces, quotes or =."""
    text = str(value)
    if not text or any(ch in text for ch in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def event_text(event: str, fields: dict[str, Any]) -> str:
    """``event=<event> key=value ...``; fields whose value is None are left out."""
    parts = [f"event={event}"]
    parts.extend(f"{key}={quote(value)}" for key, value in fields.items() if value is not None)
    return " ".join(parts)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=...`` and then the message, which is already key=value pairs."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}Z "
            f"level={record.levelname.lower()} logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            line += " exception=" + quote(self.formatException(record.exc_info))
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each event: rich's live display (the staff tool's
    progress bars) swaps it while it runs, and lines must land above the bars.

    The exception is a stream that turns what it is given back into log records — Kivy before
    2.2 (Debian 12 ships 2.1) installs one as sys.stderr on import, whatever KIVY_LOG_MODE
    says. Writing there would log each line again, forever; the process's own stderr is used.
    """

    @property
    def stream(self) -> Any:  # type: ignore[override]
        stream = sys.stderr
        if type(stream).__module__ == "kivy.logger":
            return sys.__stderr__
        return stream

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ sets it; the getter always answers sys.stderr


def configure(level: int = logging.INFO) -> None:
    """Send every logger's events at ``level`` and above to stderr as key=value lines.

    Calling it again replaces the handler it installed before (a changed level, a test)."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)


class EventLog:
    """``log(event, level="info", **fields)`` for one named logger: the line is built here."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __call__(self, event: str, level: str = "info", **fields: Any) -> None:
        number = _LEVELS.get(level, logging.ERROR)
        if self.logger.isEnabledFor(number):
            self.logger.log(number, event_text(event, fields))
