"""tvpay-box is built for the set-top boxes' arm64 CPUs as well as amd64: each package holds
compiled code for its own architecture only, a dependency that has no build for an
architecture stops the build with its name, and the launchers name the Debian package of a
missing module whatever metadata the build read. (Installing and paying on arm64 under
emulation: test_arm64_box.py, make test-slow.)"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT, deb_field

BUILD = ROOT / "packaging" / "build_deb.py"
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def _elf_machines(root: Path) -> dict[str, str]:
    """Relative path -> readelf's "Machine" of every ELF file under ``root``."""
    machines = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            header = subprocess.run(
                ["readelf", "-h", str(path)], capture_output=True, text=True, check=True
            ).stdout
            machine = next(line for line in header.splitlines() if "Machine:" in line)
            machines[str(path.relative_to(root))] = machine.split(":", 1)[1].strip()
    return machines


def _build(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD), "--out", str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_box_is_built_for_amd64_and_arm64(package_dir: Path) -> None:
    built = {deb_field(p, "Architecture") for p in package_dir.glob("tvpay-box_*.deb")}
    assert built == {"amd64", "arm64"}


def test_arm64_box_holds_only_aarch64_code(arm64_box_deb: Path, tmp_path: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(arm64_box_deb), str(tmp_path)], check=True)
    machines = _elf_machines(tmp_path)
    assert any("cbor2" in path for path in machines), "the vendored cbor2 library is missing"
    assert set(machines.values()) == {"AArch64"}, machines
    depends = deb_field(arm64_box_deb, "Depends")
    assert "libc6 (>=" in depends and "python3 (<< 3.12)" in depends


def test_arm64_box_launchers_name_the_debian_package_of_a_missing_module(
    arm64_box_deb: Path, tmp_path: Path
) -> None:
    subprocess.run(["dpkg-deb", "-x", str(arm64_box_deb), str(tmp_path)], check=True)
    source = (tmp_path / "usr/bin/tvpay-dongled").read_text(encoding="utf-8")
    line = next(x for x in source.splitlines() if x.startswith("_DEBIAN = "))
    table = ast.literal_eval(line.removeprefix("_DEBIAN = "))
    expected = {"usb": "python3-usb", "kivy": "python3-kivy", "PIL": "python3-pil"}
    assert expected.items() <= table.items()


def test_debian_metadata_without_a_file_list_still_names_its_modules() -> None:
    # Debian's own egg-info (dh_python3) has top_level.txt and no file list: a build that
    # reads it must still map "usb" to python3-usb for the launcher's one-line error.
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        from debbuild.vendor import top_level_modules
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    egg_info = sorted(DEBIAN_DIST_PACKAGES.glob("pyusb-*.egg-info"))
    assert egg_info, "Debian's python3-usb is not installed (scripts/system-deps.sh)"
    dist = metadata.Distribution.at(egg_info[0])
    assert dist.files is None
    assert top_level_modules(dist) == {"usb"}


def test_armhf_box_stops_naming_the_dependency_without_a_build(tmp_path: Path) -> None:
    result = _build(tmp_path, "--wheelhouse", str(tmp_path / "wheels"), "--arch", "armhf")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "cbor2" in lines[0] and "armhf (armv7l" in lines[0], lines[0]
    assert not list((tmp_path / "out").glob("*.deb"))


def test_a_wheel_holding_another_architectures_code_is_refused(tmp_path: Path) -> None:
    # A wheel named for aarch64 that holds this machine's cbor2 library (a mislabelled or
    # mixed-up download) must not end up in the arm64 package.
    cbor2 = metadata.distribution("cbor2")
    wheel = tmp_path / "wheels" / "arm64"
    wheel.mkdir(parents=True)
    name = f"cbor2-{cbor2.version}-cp311-cp311-manylinux_2_28_aarch64.whl"
    with zipfile.ZipFile(wheel / name, "w") as archive:
        for entry in cbor2.files or []:
            if not str(entry).startswith("..") and "__pycache__" not in str(entry):
                archive.write(cbor2.locate_file(entry), str(entry))
    result = _build(tmp_path, "--wheelhouse", str(tmp_path / "wheels"), "--arch", "arm64")
    assert result.returncode == 1
    assert "another architecture" in result.stderr and "_cbor2." in result.stderr
    assert "(amd64)" in result.stderr, result.stderr
    assert not list((tmp_path / "out").glob("*.deb"))


@pytest.mark.parametrize("arch", ["arm64"])
def test_lintian_reports_no_errors_for_the_foreign_box(arch: str, package_dir: Path) -> None:
    deb = next(package_dir.glob(f"tvpay-box_*_{arch}.deb"))
    result = subprocess.run(
        ["lintian", "--allow-root", "--tag-display-limit", "0", str(deb)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], result.stdout
