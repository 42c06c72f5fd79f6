"""The packages build without network, carry what a box or a server needs, and pass lintian."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import deb_field

BOX_FILES = [
    "usr/bin/tvpay-dongled",
    "usr/bin/tvpay-tv",
    "usr/bin/tvpay-dongle",
    "usr/lib/tvpay-box/protocol/__init__.py",
    "usr/lib/tvpay-box/dongle/daemon/main.py",
    "usr/lib/tvpay-box/tvapp/main.py",
    "lib/udev/rules.d/70-tvpay-dongle.rules",
    "lib/systemd/system/tvpay-dongled.service",
    "lib/systemd/system/tvpay-dongled.socket",
    "lib/systemd/system/tvpay-tv.service",
    "usr/lib/sysusers.d/tvpay-box.conf",
    "usr/lib/tmpfiles.d/tvpay-box.conf",
    "etc/tvpay/dongled.toml",
    "etc/tvpay/tvapp.toml",
    "usr/share/doc/tvpay-box/copyright",
    "usr/share/doc/tvpay-box/changelog.gz",
]
GATEWAY_FILES = [
    "usr/bin/tvpay-gateway",
    "usr/lib/tvpay-gateway/gateway/cli.py",
    "usr/lib/tvpay-gateway/gateway/migrations/env.py",
    "lib/systemd/system/tvpay-gateway.service",
    "usr/lib/sysusers.d/tvpay-gateway.conf",
    "usr/lib/tmpfiles.d/tvpay-gateway.conf",
    "etc/tvpay/gateway.toml",
    "etc/default/tvpay-gateway",
    "usr/share/doc/tvpay-gateway/copyright",
]


def _control_member(deb: Path, name: str) -> str:
    """A file of the package's DEBIAN/ directory (dpkg-deb --info prints it)."""
    return subprocess.run(
        ["dpkg-deb", "--info", str(deb), name], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize(
    ("name", "files"), [("tvpay-box", BOX_FILES), ("tvpay-gateway", GATEWAY_FILES)]
)
def test_package_installs_its_programs_units_and_configs(
    name: str, files: list[str], box_root: Path, gateway_root: Path
) -> None:
    root = box_root if name == "tvpay-box" else gateway_root
    missing = [f for f in files if not (root / f).is_file()]
    assert missing == []


def test_box_keymap_is_installed_for_ir_keytable(box_root: Path) -> None:
    keymaps = list((box_root / "lib/udev/rc_keymaps").glob("*.toml"))
    assert keymaps, "no ir-keytable keymap in /lib/udev/rc_keymaps"
    assert all("KEY_OK" in k.read_text(encoding="utf-8") for k in keymaps)


def test_box_depends_on_debian_python_packages_and_fonts(debs: dict[str, Path]) -> None:
    depends = deb_field(debs["tvpay-box"], "Depends")
    for needed in (
        "python3 (>= 3.11)",
        "python3-usb",
        "python3-pyudev",
        "python3-cryptography",
        "python3-requests",
        "python3-kivy",
        "libusb-1.0-0",
        "fonts-wqy-microhei | fonts-noto-cjk",
    ):
        assert needed in depends


def test_architecture_is_all_only_without_compiled_code(debs: dict[str, Path]) -> None:
    for deb in debs.values():
        contents = subprocess.run(
            ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
        ).stdout
        compiled = ".so\n" in contents or ".so " in contents
        assert (deb_field(deb, "Architecture") == "all") is (not compiled)


@pytest.mark.parametrize("name", ["tvpay-box", "tvpay-gateway"])
def test_configs_under_etc_are_conffiles(name: str, debs: dict[str, Path]) -> None:
    conffiles = _control_member(debs[name], "conffiles").split()
    contents = subprocess.run(
        ["dpkg-deb", "-c", str(debs[name])], capture_output=True, text=True, check=True
    ).stdout
    etc_files = sorted(
        line.split()[-1].lstrip(".")
        for line in contents.splitlines()
        if " ./etc/" in line and not line.startswith("d")
    )
    assert etc_files and sorted(conffiles) == etc_files


@pytest.mark.parametrize("name", ["tvpay-box", "tvpay-gateway"])
def test_md5sums_match_the_installed_files(
    name: str, debs: dict[str, Path], box_root: Path, gateway_root: Path
) -> None:
    root = box_root if name == "tvpay-box" else gateway_root
    lines = _control_member(debs[name], "md5sums").splitlines()
    assert len(lines) > 10
    for line in lines:
        digest, relative = line.split("  ", 1)
        assert hashlib.md5((root / relative).read_bytes()).hexdigest() == digest, relative


@pytest.mark.parametrize("name", ["tvpay-box", "tvpay-gateway"])
def test_no_bytecode_is_shipped(name: str, box_root: Path, gateway_root: Path) -> None:
    root = box_root if name == "tvpay-box" else gateway_root
    assert list(root.rglob("__pycache__")) == []
    assert list(root.rglob("*.pyc")) == []


@pytest.mark.parametrize("name", ["tvpay-box", "tvpay-gateway"])
def test_maintainer_scripts_are_valid_shell(name: str, debs: dict[str, Path]) -> None:
    for script in ("postinst", "prerm", "postrm"):
        text = _control_member(debs[name], script)
        assert text.startswith("#!/bin/sh\nset -e\n")
        subprocess.run(["sh", "-n"], input=text, text=True, check=True)


@pytest.mark.parametrize("name", ["tvpay-box", "tvpay-gateway"])
def test_lintian_reports_no_errors(name: str, debs: dict[str, Path]) -> None:
    result = subprocess.run(
        ["lintian", "--allow-root", "--tag-display-limit", "0", str(debs[name])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], result.stdout
