"""The project's own command-line tools, as the stack runs them (one-shot or long-running).

Tools are run as separate processes through their console scripts, exactly as an operator or a
staff member would run them: the emulator replaces hardware, never our own code paths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


class ToolError(Exception):
    """A tool run by the stack failed; the message quotes the end of its output."""


def tool_path(name: str) -> str:
    """The console script ``name`` next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            f"the command {name} is not installed: run 'make setup' (or"
            " '.venv/bin/pip install -e .') in the project directory"
        )
    return found


def run_tool(
    name: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    log_path: Path | None = None,
) -> str:
    """Run a tool to completion and return its stdout; its stderr is appended to ``log_path``."""
    argv = [tool_path(name), *args]
    try:
        done = subprocess.run(
            argv,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"{name} {' '.join(args[:2])} did not finish within {timeout:.0f} s"
        ) from exc
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"$ {name} {' '.join(_redact(args))}\n{stderr}")
    if done.returncode != 0:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-5:])
        raise ToolError(
            f"{name} {' '.join(_redact(args[:3]))} failed (exit {done.returncode}): {tail}"
        )
    return stdout


def _redact(args: Sequence[str]) -> list[str]:
    """Hide the value after a secret-bearing flag, so logs never hold a PIN."""
    out: list[str] = []
    hide = False
    for arg in args:
        out.append("***" if hide else arg)
        hide = arg in ("--pin", "--puk", "--new-pin")
    return out
