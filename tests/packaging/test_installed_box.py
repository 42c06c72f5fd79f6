"""The extracted tvpay-box works: its daemon serves a virtual dongle, its TV app draws a
screen headless, and bad input stops them with one clear line instead of a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dongle.client import DaemonClient
from tests.fixtures.dongles import CableProcess, running_cable

STARTUP_TIMEOUT = 60.0
NOBODY = 65534
TV_SCRIPT = Path(__file__).with_name("tv_one_screen.py")


@dataclass
class InstalledDaemon:
    process: subprocess.Popen[bytes]
    socket_path: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _daemon_env(emulator_path: Path, notify_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(emulator_path)
    if notify_path is not None:
        env["NOTIFY_SOCKET"] = str(notify_path)
    return env


def wait_ready(
    notify: socket.socket,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Until the daemon sends READY=1 on ``notify`` (as to systemd), or exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notify.settimeout(min(0.5, max(0.01, deadline - time.monotonic())))
        try:
            if b"READY=1" in notify.recv(4096):
                return
        except TimeoutError:
            if process.poll() is not None:
                raise AssertionError(
                    f"installed tvpay-dongled exited:\n{log.read_text()}"
                ) from None
    raise AssertionError(f"installed tvpay-dongled never became ready:\n{log.read_text()}")


@pytest.fixture
def cable() -> Iterator[CableProcess]:
    with running_cable(count=1) as cable:
        yield cable


@pytest.fixture
def installed_daemon(
    box_root: Path, system_python: Path, emulator_path: Path, cable: CableProcess, tmp_path: Path
) -> Iterator[InstalledDaemon]:
    """/usr/bin/tvpay-dongled of the extracted package, with the package's example config,
    pointed at the virtual cable instead of libusb and udev."""
    socket_path = tmp_path / "dongled.sock"
    notify_path = tmp_path / "notify.sock"
    log_path = tmp_path / "dongled.log"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    cmd = [
        str(box_root / "usr/bin/tvpay-dongled"),
        "--config",
        str(box_root / "etc/tvpay/dongled.toml"),
        "--socket",
        str(socket_path),
        "--usb-backend",
        cable.backend_spec,
        "--hotplug-source",
        f"{cable.hotplug_spec}?{cable.address}",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd, env=_daemon_env(emulator_path, notify_path), stdout=log, stderr=log
        )
    try:
        wait_ready(notify, process, log_path)
        yield InstalledDaemon(process, socket_path, log_path)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        notify.close()


def test_installed_launchers_run_on_debian_python(box_root: Path, system_python: Path) -> None:
    for script in ("tvpay-dongled", "tvpay-tv", "tvpay-dongle"):
        launcher = box_root / "usr/bin" / script
        assert launcher.read_text(encoding="utf-8").startswith("#!/usr/bin/python3\n")
        result = subprocess.run(
            [str(launcher), "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


def test_installed_daemon_serves_the_virtual_dongle(
    installed_daemon: InstalledDaemon, cable: CableProcess
) -> None:
    with DaemonClient(str(installed_daemon.socket_path), client_name="packaging-test") as client:
        devices = client.devices()
        assert [d.serial for d in devices] == cable.serials
        assert client.ping(b"installed") == b"installed"


def test_installed_daemon_uses_the_vendored_cbor2(box_root: Path, system_python: Path) -> None:
    # Debian 12's cbor2 is too old for the protocol's strict decoder; the launcher's path
    # must pick the vendored one over /usr/lib/python3/dist-packages.
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/vendor']\n"
        "import cbor2; from protocol.messages import decode_map\n"
        "print(cbor2.__file__); print(decode_map(bytes.fromhex('a16161f5')))"
    )
    lib = str(box_root / "usr/lib/tvpay-box")
    result = subprocess.run(
        [str(system_python), "-c", code, lib], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [f"{lib}/vendor/cbor2/__init__.py", "{'a': True}"]


def test_installed_tv_app_draws_its_first_screen_headless(
    installed_daemon: InstalledDaemon, box_root: Path, system_python: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["KIVY_HOME"] = str(tmp_path / "kivy")
    cmd = [
        str(system_python),
        str(TV_SCRIPT),
        str(box_root),
        str(tmp_path / "screen.png"),
        "--config",
        str(box_root / "etc/tvpay/tvapp.toml"),
        "--no-fullscreen",
        "--window",
        "1280x720",
        "--no-evdev",
        "--state-dir",
        str(tmp_path / "state"),
        "--daemon-socket",
        str(installed_daemon.socket_path),
        "--gateway-url",
        "http://127.0.0.1:9",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["language"] == "zh_CN"
    assert state["screen"] and state["focus"] and state["texts"]
    # The app reached the installed daemon: it does not show the "daemon not running" state.
    assert state.get("state") != "daemon_down"
    assert list(tmp_path.glob("screen*.png"))


def test_bad_daemon_setting_fails_with_one_line(
    box_root: Path, system_python: Path, emulator_path: Path, tmp_path: Path
) -> None:
    config = tmp_path / "dongled.toml"
    config.write_text('[usb]\ncommand_timeout = "soon"\n', encoding="utf-8")
    result = subprocess.run(
        [str(box_root / "usr/bin/tvpay-dongled"), "--config", str(config)],
        env=_daemon_env(emulator_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 78  # the unit's RestartPreventExitStatus: no restart loop
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "command_timeout" in lines[0]


def test_missing_debian_dependency_fails_with_one_line(box_root: Path, system_python: Path) -> None:
    # -S leaves /usr/lib/python3/dist-packages off the path, as if python3-usb were missing.
    result = subprocess.run(
        [
            str(system_python),
            "-S",
            str(box_root / "usr/bin/tvpay-dongled"),
            "--socket",
            "/nonexistent/s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 69
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "missing Python module" in lines[0] and "install python3-" in lines[0]


def test_unreadable_tv_state_directory_fails_with_one_line(
    box_root: Path, system_python: Path
) -> None:
    # The app runs as an unprivileged user (nobody here, tvpay-tv on a box) whose state
    # directory belongs to someone else: the app must say so, once.
    with tempfile.TemporaryDirectory(prefix="tvpay-tv-") as scratch:
        base = Path(scratch)
        base.chmod(0o755)
        state = base / "state"
        state.mkdir(mode=0o700)
        home = base / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(HOME=str(home), KIVY_HOME=str(home / "kivy"))
        result = subprocess.run(
            [
                str(box_root / "usr/bin/tvpay-tv"),
                "--no-evdev",
                "--state-dir",
                str(state),
                "--config",
                str(box_root / "etc/tvpay/tvapp.toml"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            user=NOBODY,
            group=NOBODY,
        )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    # The app checks its state directory before Kivy starts: the problem is one line.
    lines = [line for line in result.stderr.splitlines() if str(state) in line]
    assert len(lines) == 1 and lines[0].startswith("tvpay-tv: state directory"), result.stderr
