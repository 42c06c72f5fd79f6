"""Fixtures of the package checks: both .deb files built once per session with the real
builder, each extracted (dpkg -x) into a throwaway root, and helpers to run what they install.

Installed programs run with Debian's /usr/bin/python3 and Debian's Python packages, as on a
box or a server: the machine needs the box package's Depends installed (scripts/system-deps.sh).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
PACKAGES = ("tvpay-box", "tvpay-gateway")


def deb_field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="session")
def package_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tvpay-debs-") as scratch:
        out = Path(scratch)
        result = subprocess.run(
            [sys.executable, str(ROOT / "packaging" / "build_deb.py"), "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"the package build failed:\n{result.stderr}"
        yield out


def host_architecture() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def built_deb(package_dir: Path, name: str, arch: str) -> Path:
    """The one ``name`` package built for ``arch`` (or for all architectures)."""
    matches = [
        p for p in sorted(package_dir.glob(f"{name}_*.deb")) if p.stem.endswith((arch, "_all"))
    ]
    assert len(matches) == 1, f"expected one {arch} {name} package in {package_dir}: {matches}"
    return matches[0]


@pytest.fixture(scope="session")
def debs(package_dir: Path) -> dict[str, Path]:
    """Each package as built for this machine."""
    return {name: built_deb(package_dir, name, host_architecture()) for name in PACKAGES}


@pytest.fixture(scope="session")
def arm64_box_deb(package_dir: Path) -> Path:
    """tvpay-box for the set-top boxes' arm64 CPUs, built on this machine."""
    return built_deb(package_dir, "tvpay-box", "arm64")


def _extract(deb: Path, prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        root = Path(scratch)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        yield root


@pytest.fixture(scope="session")
def box_root(debs: dict[str, Path]) -> Iterator[Path]:
    yield from _extract(debs["tvpay-box"], "tvpay-box-root-")


@pytest.fixture(scope="session")
def gateway_root(debs: dict[str, Path]) -> Iterator[Path]:
    yield from _extract(debs["tvpay-gateway"], "tvpay-gateway-root-")


@pytest.fixture(scope="session")
def system_python() -> Path:
    """Debian's interpreter, with the box package's Debian dependencies importable."""
    assert SYSTEM_PYTHON.exists(), "Debian's python3 is missing: apt-get install python3"
    modules = ["usb", "pyudev", "cryptography", "requests", "qrcode", "PIL", "kivy", "babel"]
    probe = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    result = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", probe, *modules], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        "the box package's Debian dependencies are not installed (scripts/system-deps.sh "
        f"installs them): {result.stderr.strip().splitlines()[-1:]}"
    )
    return SYSTEM_PYTHON


@pytest.fixture
def emulator_path(tmp_path: Path) -> Path:
    """A directory holding only the emulator package, for PYTHONPATH: the daemon loads the
    virtual cable's pyusb backend by configuration, everything else comes from the package."""
    shim = tmp_path / "emulator-only"
    shim.mkdir()
    (shim / "emulator").symlink_to(ROOT / "emulator")
    return shim
