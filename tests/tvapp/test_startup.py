"""tvpay-tv as a real process: bad settings or an unusable state directory stop it at start with
one line and a documented exit status, before Kivy opens a window; good settings start it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXIT_CONFIG = 2
EXIT_CANTCREAT = 73


def tv_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("KIVY_LOG_MODE", None)  # the app must work with Kivy's default
    env.update(KIVY_NO_ARGS="1", KIVY_HOME=str(tmp_path / "kivy"))
    return env


def run_tv(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tvapp.main", "--no-evdev", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=tv_env(tmp_path))


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    lines = result.stderr.strip().splitlines()
    # One line also shows that Kivy never started: it logs several lines as it does.
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tvpay-tv: ") and text in lines[0], lines[0]
    assert result.returncode == code


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--window", "12x"], "window must look like 1920x1080"),
        (["--language", "fr"], "unknown language 'fr'"),
    ],
)
def test_a_bad_flag_value_is_one_line(tmp_path: Path, args: list[str], text: str) -> None:
    result = run_tv(tmp_path, "--state-dir", str(tmp_path / "state"), *args)
    assert_one_line(result, EXIT_CONFIG, text)


@pytest.mark.parametrize(
    "content", [b"[tvapp\n", b"\xff\xfe[tvapp]\n", b"tvapp = 3\n"], ids=["syntax", "bytes", "type"]
)
def test_a_malformed_config_file_is_one_line_naming_it(tmp_path: Path, content: bytes) -> None:
    file = tmp_path / "tvapp.toml"
    file.write_bytes(content)
    result = run_tv(tmp_path, "--config", str(file), "--state-dir", str(tmp_path / "state"))
    assert_one_line(result, EXIT_CONFIG, str(file))


@pytest.mark.parametrize("where", ["is_a_file", "under_a_file"])
def test_an_unusable_state_directory_is_one_line_naming_it(tmp_path: Path, where: str) -> None:
    # A regular file where the directory should be: unusable for root and other users alike.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    state = blocker if where == "is_a_file" else blocker / "state"
    result = run_tv(tmp_path, "--state-dir", str(state))
    assert_one_line(result, EXIT_CANTCREAT, f"state directory {state} cannot be used")


def test_good_settings_start_the_main_loop(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    cmd = [sys.executable, "-m", "tvapp.main", "--no-evdev", "--state-dir", str(tmp_path / "s")]
    cmd += ["--gateway-url", "http://127.0.0.1:9", "--daemon-socket", str(tmp_path / "no.sock")]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL, env=tv_env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while "Start application main loop" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
    assert "Traceback" not in log.read_text(errors="replace")
