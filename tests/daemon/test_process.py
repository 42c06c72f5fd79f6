"""tvpay-dongled as a process: readiness, its socket, SIGTERM, restarts and bad configuration."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dongle.client import DaemonClient
from dongle.errors import DaemonUnavailable
from tests.daemon.conftest import DaemonProcess, start_daemon
from tests.fixtures.dongles import CableProcess


def test_ready_notification_comes_after_the_dongle_is_open(daemon: DaemonProcess) -> None:
    client = daemon.client()
    assert [d.state for d in client.devices()] == ["factory"]
    client.close()


def test_socket_file_is_mode_0660(daemon: DaemonProcess) -> None:
    mode = stat.S_IMODE(os.stat(daemon.socket_path).st_mode)
    assert mode == 0o660


def test_socket_mode_is_configurable(workdir: Path, cable: CableProcess) -> None:
    daemon = start_daemon(workdir, cable, "--socket-mode", "0600")
    try:
        assert stat.S_IMODE(os.stat(daemon.socket_path).st_mode) == 0o600
    finally:
        daemon.stop()


def test_sigterm_stops_gracefully_and_removes_the_socket(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.acquire()  # a connection with a lease, still open at shutdown
    assert daemon.stop(signal.SIGTERM) == 0
    daemon.wait_notify(b"STOPPING=1", timeout=5)
    assert not os.path.exists(daemon.socket_path)
    assert "event=stopped" in daemon.log()
    client.close()


def test_client_reconnects_after_a_daemon_restart(
    workdir: Path, cable: CableProcess, daemon: DaemonProcess
) -> None:
    client = daemon.client()
    assert client.ping(b"before") == b"before"
    daemon.stop()
    with pytest.raises(DaemonUnavailable, match="systemctl start tvpay-dongled"):
        client.ping(b"while down")
    restarted = start_daemon(workdir, cable)
    try:
        assert client.ping(b"after") == b"after"
    finally:
        client.close()
        restarted.stop()


def test_stale_socket_file_from_a_crash_is_replaced(workdir: Path, cable: CableProcess) -> None:
    first = start_daemon(workdir, cable)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert os.path.exists(first.socket_path)  # left behind by the killed daemon
    second = start_daemon(workdir, cable)
    try:
        assert second.client().ping(b"x") == b"x"
    finally:
        second.stop()


def test_second_daemon_on_the_same_socket_refuses_to_start(daemon: DaemonProcess) -> None:
    workdir = Path(daemon.socket_path).parent
    second = start_daemon(workdir, None, "--hotplug-source", "none", wait_ready=False)
    assert second.process.wait(30) == 1
    assert "already serving" in second.log()
    assert daemon.client().ping(b"still") == b"still"


def test_invalid_configuration_exits_with_status_78(workdir: Path) -> None:
    (workdir / "dongled.toml").write_text("[usb]\nbogus = 1\n")
    env = {**os.environ, "TVPAY_DONGLED_CONFIG": str(workdir / "dongled.toml")}
    result = subprocess.run(
        [sys.executable, "-m", "dongle.daemon.main", "--socket", str(workdir / "s.sock")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78
    assert "unknown setting [usb] bogus" in result.stderr


def test_socket_activation_uses_the_inherited_listener(workdir: Path, cable: CableProcess) -> None:
    """systemd passes the listening socket as fd 3 (LISTEN_FDS=1, LISTEN_PID=the daemon)."""
    path = str(workdir / "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    script = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid());"
        "os.environ['LISTEN_FDS'] = '1'; from dongle.daemon.main import main; sys.exit(main(sys.argv[2:]))"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            str(listener.fileno()),
            "--socket",
            str(workdir / "unused.sock"),
            "--usb-backend",
            cable.backend_spec,
            "--hotplug-source",
            f"{cable.hotplug_spec}?{cable.address}",
        ],
        pass_fds=[listener.fileno()],
        stderr=subprocess.DEVNULL,
    )
    listener.close()
    try:
        with DaemonClient(path, timeout=30) as client:
            assert client.ping(b"activated") == b"activated"
        assert not os.path.exists(workdir / "unused.sock")
    finally:
        process.terminate()
        assert process.wait(15) == 0
