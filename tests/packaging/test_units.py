"""The systemd units, sysusers.d and tmpfiles.d files are accepted by systemd's own tools,
run against throwaway roots holding the extracted packages."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

UNITS = {
    "tvpay-box": ["tvpay-dongled.service", "tvpay-dongled.socket", "tvpay-tv.service"],
    "tvpay-gateway": ["tvpay-gateway.service"],
}
HOST_UNITS = Path("/lib/systemd/system")


@pytest.fixture(scope="module")
def verify_root(box_root: Path, gateway_root: Path) -> Iterator[Path]:
    """Both packages plus the host's own units (targets, udev, logind) that ours refer to, so
    systemd-analyze --root finds every unit and every ExecStart binary inside the root."""
    with tempfile.TemporaryDirectory(prefix="tvpay-verify-") as scratch:
        root = Path(scratch)
        for package in (box_root, gateway_root):
            shutil.copytree(package, root, symlinks=True, dirs_exist_ok=True)
        units = root / "lib/systemd/system"
        for host_unit in HOST_UNITS.iterdir():
            target = units / host_unit.name
            if not target.exists() and not target.is_symlink():
                if host_unit.is_symlink():
                    target.symlink_to(host_unit.readlink())
                elif host_unit.is_file():
                    shutil.copyfile(host_unit, target)
        (root / "tmp").mkdir()
        yield root


def _analyze(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("unit", [u for units in UNITS.values() for u in units])
def test_systemd_analyze_verify_accepts_the_unit(verify_root: Path, unit: str) -> None:
    result = _analyze(verify_root, unit)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_catches_a_missing_exec_start_binary(verify_root: Path, tmp_path: Path) -> None:
    # The check above is only worth something if verify looks inside the root for binaries.
    unit = verify_root / "lib/systemd/system/tvpay-probe.service"
    unit.write_text("[Service]\nExecStart=/usr/bin/tvpay-not-installed\n", encoding="utf-8")
    try:
        result = _analyze(verify_root, "tvpay-probe.service")
    finally:
        unit.unlink()
    assert result.returncode != 0
    assert "tvpay-not-installed" in result.stderr


@pytest.mark.parametrize(
    ("unit", "final_statuses"),
    [
        ("tvpay-tv.service", "2 69"),  # bad setting; missing module
        ("tvpay-gateway.service", "2"),  # bad setting (an unreachable database may come back)
        ("tvpay-dongled.service", "69 78"),  # no USB library; bad configuration
    ],
)
def test_unit_gives_up_after_a_few_failed_starts(
    verify_root: Path, unit: str, final_statuses: str
) -> None:
    text = (verify_root / "lib/systemd/system" / unit).read_text(encoding="utf-8")
    assert "Restart=on-failure" in text
    assert "StartLimitBurst=3" in text
    assert f"RestartPreventExitStatus={final_statuses}\n" in text


@pytest.mark.parametrize(
    ("package", "users"),
    [("tvpay-box", ["tvpay-dongled", "tvpay-tv"]), ("tvpay-gateway", ["tvpay-gateway"])],
)
def test_sysusers_creates_the_service_users(
    package: str, users: list[str], box_root: Path, gateway_root: Path, tmp_path: Path
) -> None:
    source = box_root if package == "tvpay-box" else gateway_root
    conf = source / f"usr/lib/sysusers.d/{package}.conf"
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(conf)], check=True)
    passwd = (tmp_path / "etc/passwd").read_text(encoding="utf-8")
    assert sorted(line.split(":")[0] for line in passwd.splitlines()) == sorted(users)


def test_tv_user_may_use_the_daemon_socket_and_the_remote(box_root: Path, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    conf = box_root / "usr/lib/sysusers.d/tvpay-box.conf"
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(conf)], check=True)
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (tmp_path / "etc/group").read_text(encoding="utf-8").splitlines()
    }
    assert "tvpay-tv" in groups["tvpay"]
    assert "tvpay-tv" in groups["input"]


@pytest.mark.parametrize(
    ("package", "directories"),
    [
        ("tvpay-box", ["var/lib/tvpay/dongled", "var/lib/tvpay/tvapp"]),
        ("tvpay-gateway", ["var/lib/tvpay/gateway"]),
    ],
)
def test_tmpfiles_creates_private_state_directories(
    package: str, directories: list[str], box_root: Path, gateway_root: Path, tmp_path: Path
) -> None:
    source = box_root if package == "tvpay-box" else gateway_root
    (tmp_path / "etc").mkdir()
    sysusers = source / f"usr/lib/sysusers.d/{package}.conf"
    tmpfiles = source / f"usr/lib/tmpfiles.d/{package}.conf"
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(sysusers)], check=True)
    subprocess.run(
        ["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(tmpfiles)], check=True
    )
    uids = {
        line.split(":")[0]: int(line.split(":")[2])
        for line in (tmp_path / "etc/passwd").read_text(encoding="utf-8").splitlines()
    }
    for directory in directories:
        info = (tmp_path / directory).stat()
        assert info.st_mode & 0o777 == 0o700
        assert info.st_uid in uids.values() and info.st_uid != 0
