"""tvpay-dongle doctor: each check passes or says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from dongle.doctor import main as doctor
from tests.daemon.conftest import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]


def test_doctor_reports_the_daemon_and_who_holds_the_dongle(
    daemon: DaemonProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    with daemon.client("tvapp") as holder:
        holder.acquire()
        code = doctor(
            ["--socket", daemon.socket_path, "--rules-dir", str(ROOT / "packaging" / "udev")]
        )
    out = capsys.readouterr().out
    assert "[ ok ] udev rule:" in out
    assert f"[ ok ] daemon: answers at {daemon.socket_path}, 1 dongle(s) open" in out
    assert "state factory, held by tvapp (pid" in out
    # No real USB bus on a test machine: the device-node check fails and says what to do.
    assert "insert the payment dongle" in out
    assert code == 1


def test_doctor_says_how_to_start_a_missing_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = doctor(["--socket", str(tmp_path / "none.sock"), "--rules-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "systemctl start tvpay-dongled" in out
    assert "udevadm control --reload" in out
    assert code == 1
