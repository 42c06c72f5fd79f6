"""Child processes of the stack: readiness lines, prefixed logs, clean stop, no orphans."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest

from emulator.stack.process import (
    ManagedProcess,
    ProcessError,
    ProcessNotReady,
    ProcessSpec,
    Spawner,
)

_CHILD = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("bye", flush=True), sys.exit(0)))
print("to stderr", file=sys.stderr, flush=True)
print("listening on 127.0.0.1:4321", flush=True)
signal.pause()
"""


@pytest.fixture
def spawner() -> Spawner:
    spawner = Spawner()
    yield spawner
    spawner.close()


def _spec(code: str, **kwargs: object) -> ProcessSpec:
    return ProcessSpec(name="child", argv=(sys.executable, "-c", code), **kwargs)  # type: ignore[arg-type]


def test_ready_line_is_matched_and_logs_are_prefixed(spawner: Spawner, tmp_path: Path) -> None:
    echo = io.StringIO()
    child = ManagedProcess(
        _spec(_CHILD, ready_pattern=r"listening on (?P<addr>\S+)"), spawner, tmp_path, echo=echo
    )
    match = child.start(tmp_path)
    assert match is not None and match["addr"] == "127.0.0.1:4321"
    assert child.stop() == 0
    assert "   child | listening on 127.0.0.1:4321" in echo.getvalue()
    assert "bye" in child.log_path.read_text()
    assert "to stderr" in child.log_path.read_text()


def test_a_child_that_dies_while_starting_is_reported(spawner: Spawner, tmp_path: Path) -> None:
    child = ManagedProcess(
        _spec("raise SystemExit(3)", ready_pattern="never"), spawner, tmp_path, echo=None
    )
    with pytest.raises(ProcessError, match="status 3"):
        child.start(tmp_path)


def test_a_child_that_never_gets_ready_is_killed(spawner: Spawner, tmp_path: Path) -> None:
    child = ManagedProcess(
        _spec("import time; time.sleep(60)", ready_pattern="never", ready_timeout=0.3),
        spawner,
        tmp_path,
        echo=None,
    )
    with pytest.raises(ProcessNotReady):
        child.start(tmp_path)
    assert not child.running()


def test_kill_leaves_no_grandchild(spawner: Spawner, tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('grandchild', p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = ManagedProcess(
        _spec(code, ready_pattern=r"grandchild (?P<pid>\d+)"), spawner, tmp_path, echo=None
    )
    match = child.start(tmp_path)
    assert match is not None
    grandchild = int(match["pid"])
    child.kill()
    assert _gone(grandchild, deadline=time.monotonic() + 5)


def _gone(pid: int, deadline: float) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie awaiting its reaper)."""
    status = Path(f"/proc/{pid}/status")
    while time.monotonic() < deadline:
        try:
            if "State:\tZ" in status.read_text():
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False
