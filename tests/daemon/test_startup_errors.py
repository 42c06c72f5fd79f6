"""tvpay-dongled refuses to start with one log line and a documented exit status when its
configuration is unreadable or invalid (78) or its socket cannot be created (73)."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

EXIT_CANTCREAT = 73
EXIT_CONFIG = 78
# Groups that exist everywhere, so no "unknown group" warning joins the one error line.
QUIET_ACCESS = '[access]\ngroups = ["root"]\nstaff_groups = ["root"]\n[socket]\ngroup = "root"\n'


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_daemon(
    workdir: Path, config: bytes, *args: str, fd_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the daemon to its exit; ``fd_limit`` sets its soft and hard RLIMIT_NOFILE."""
    (workdir / "dongled.toml").write_bytes(config)
    cable = f"127.0.0.1:{closed_port()}"  # never reached: every case fails before hotplug
    cmd = [sys.executable, "-m", "dongle.daemon.main", "--config", str(workdir / "dongled.toml")]
    cmd += ["--socket", str(workdir / "s.sock"), "--usb-backend"]
    cmd += [f"emulator.usb.cable:backend?{cable}", *args]

    def limit_fds() -> None:
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    return subprocess.run(
        cmd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=limit_fds,
    )


def the_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.returncode == code, result.stderr
    assert "level=error" in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("config", "args", "text"),
    [
        (b"[usb\n", [], "is not valid TOML"),
        (b"\xff\xfe[usb]\n", [], "is not valid TOML"),
        (b"[socket]\nmode = -1\n", [], "socket_mode = -1 is invalid"),
        (QUIET_ACCESS.encode(), ["--socket-mode", "7777"], "socket_mode = '7777' is invalid"),
        (QUIET_ACCESS.encode(), ["--vid", "0x10000"], "vid = '0x10000' is invalid"),
        (QUIET_ACCESS.encode(), ["--usb-backend", "nonsense"], "cannot load USB backend"),
        (
            QUIET_ACCESS.encode() + b"[clients]\nmax_per_uid = 20\nmax_total = 10\n",
            [],
            "max_per_uid = 20 is more than max_total = 10",
        ),
        (
            QUIET_ACCESS.encode() + b"[clients]\nmax_total = 0\n",
            [],
            "max_connections = 0 is invalid",
        ),
        (
            QUIET_ACCESS.encode() + b"[clients]\nmessage_timeout = -1\n",
            [],
            "message_timeout = -1 is invalid",
        ),
    ],
    ids=[
        "syntax",
        "bytes",
        "mode-file",
        "mode-flag",
        "vid-flag",
        "backend-spec",
        "caps-order",
        "cap-zero",
        "timeout-negative",
    ],
)
def test_bad_configuration_is_one_line_and_78(
    workdir: Path, config: bytes, args: list[str], text: str
) -> None:
    line = the_line(run_daemon(workdir, config, *args), EXIT_CONFIG)
    assert "event=config_invalid" in line and text in line


def test_unreadable_configuration_is_one_line_and_78(workdir: Path) -> None:
    (workdir / "dir.toml").mkdir()
    result = run_daemon(workdir, b"", "--config", str(workdir / "dir.toml"))
    assert "cannot read the configuration" in the_line(result, EXIT_CONFIG)


def test_socket_directory_that_cannot_be_created_is_one_line_and_73(workdir: Path) -> None:
    blocker = workdir / "blocker"
    blocker.write_text("a file where the socket directory should be")
    result = run_daemon(workdir, QUIET_ACCESS.encode(), "--socket", str(blocker / "d.sock"))
    assert f"cannot create the socket directory {blocker}" in the_line(result, EXIT_CANTCREAT)


def test_a_file_at_the_socket_path_is_refused_and_kept(workdir: Path) -> None:
    precious = workdir / "notes.txt"
    precious.write_text("not a socket")
    result = run_daemon(workdir, QUIET_ACCESS.encode(), "--socket", str(precious))
    assert "is not a socket" in the_line(result, EXIT_CANTCREAT)
    assert precious.read_text() == "not a socket"


def test_a_connection_cap_beyond_the_descriptor_limit_is_one_line_and_78(workdir: Path) -> None:
    config = QUIET_ACCESS.encode() + b"[clients]\nmax_total = 500\n"
    line = the_line(run_daemon(workdir, config, fd_limit=256), EXIT_CONFIG)
    assert "max_total = 500 needs 564 file descriptors but the daemon may open only 256" in line
