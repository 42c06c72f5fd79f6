"""Who may use the daemon: socket permissions, peer credentials, the staff group."""

from __future__ import annotations

from pathlib import Path

import pytest

from dongle.client import DaemonClient
from tests.daemon.conftest import NOBODY, DaemonProcess, run_as, start_daemon
from tests.fixtures.dongles import CableProcess


def _ping_as_nobody(socket_path: str) -> tuple[str, str]:
    return run_as(NOBODY, lambda: DaemonClient(socket_path, timeout=10).ping(b"hi"))


def test_other_users_cannot_open_the_0660_socket(daemon: DaemonProcess) -> None:
    outcome, detail = _ping_as_nobody(daemon.socket_path)
    assert outcome == "AccessDenied"
    assert "add it to the group" in detail


def test_peer_credentials_refuse_a_user_not_in_the_allowed_groups(
    workdir: Path, cable: CableProcess
) -> None:
    daemon = start_daemon(workdir, cable, "--socket-mode", "0666")
    try:
        outcome, detail = _ping_as_nobody(daemon.socket_path)
        assert outcome == "AccessDenied"
        assert f"user {NOBODY} may not use the payment dongle" in detail
        assert "event=client_gone" in daemon.log() and "reason=refused" in daemon.log()
    finally:
        daemon.stop()


@pytest.fixture
def daemon_allowing_nobody(workdir: Path, cable: CableProcess) -> DaemonProcess:
    (workdir / "dongled.toml").write_text('[access]\nusers = ["nobody"]\n')
    return start_daemon(workdir, cable, "--socket-mode", "0666")


def test_a_configured_user_may_use_the_dongle(daemon_allowing_nobody: DaemonProcess) -> None:
    try:
        assert _ping_as_nobody(daemon_allowing_nobody.socket_path) == ("ok", "b'hi'")
    finally:
        daemon_allowing_nobody.stop()


def test_provisioning_needs_a_staff_group(daemon_allowing_nobody: DaemonProcess) -> None:
    path = daemon_allowing_nobody.socket_path
    try:
        outcome, detail = run_as(NOBODY, lambda: DaemonClient(path).generate_key())
        assert outcome == "AccessDenied"
        assert "provisioning operation" in detail
        # root is staff: the same operation works for it
        with DaemonClient(path) as root_client:
            assert len(root_client.generate_key()["public_key"]) == 65
    finally:
        daemon_allowing_nobody.stop()
