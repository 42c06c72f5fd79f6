"""tvpay-gateway refuses to start with one line and a documented exit status when the database
cannot be reached or the state directory cannot be used (docs/gateway.md §2, exit statuses)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "gateway.cli"]
EXIT_UNAVAILABLE = 69
EXIT_CANTCREAT = 73


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "0"]])
def test_unreachable_postgresql_is_one_line_with_the_url_masked(
    tmp_path: Path, command: list[str]
) -> None:
    url = f"postgresql+psycopg://tvpay:s3cret@127.0.0.1:{closed_port()}/tvpay"
    state = tmp_path / "state"
    if command[0] == "serve":
        state.mkdir()
    result = run("--state-dir", str(state), "--database-url", url, *command)
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert "Traceback" not in line and "s3cret" not in line
    assert "tvpay:***@127.0.0.1" in line
    assert "host, port, user, password" in line


@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "0"]])
def test_unusable_state_directory_is_one_line_naming_it(tmp_path: Path, command: list[str]) -> None:
    # A regular file where the directory should be: unusable for root and other users alike.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    state = blocker / "state" if command[0] == "init" else blocker
    result = run("--state-dir", str(state), *command)
    assert result.returncode == EXIT_CANTCREAT, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"state directory {state}" in result.stderr
    assert "can read and write" in result.stderr
