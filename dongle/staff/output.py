"""What a command prints: rich text for people, one JSON object for scripts (--json).

Results go to stdout. With --json, stdout holds exactly one JSON object per command, also when
the command fails (``{"ok": false, "error": {...}}``); people get errors on stderr. Logs always
go to stderr (dongle.staff.log), so they never mix with a result.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from dongle.staff.errors import StaffError

Render = Callable[[Console], None]


class Output:
    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        # Looked up now, not at import, so tests and rich's redirection see the live streams.
        self.console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.errors = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    def result(self, data: dict[str, Any], render: Render) -> None:
        """Print a successful result: ``data`` as JSON, or ``render`` for people."""
        if self.json_mode:
            self._json({"ok": True, **data})
        else:
            render(self.console)

    def failure(
        self, error: StaffError, extra: dict[str, Any] | None = None, hint: str = ""
    ) -> None:
        """Print a failure: the error's sentence, and ``extra`` fields for scripts."""
        if self.json_mode:
            body = {"kind": error.kind, "message": str(error), "exit_code": error.exit_code}
            self._json({"ok": False, "error": body, **(extra or {})})
            return
        self.errors.print(f"[bold red]error:[/] {escape(str(error))}")
        if hint:
            self.errors.print(hint)

    def _json(self, data: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
        sys.stdout.flush()
