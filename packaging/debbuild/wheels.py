"""Wheels of the vendored distributions that hold compiled code, one directory per architecture.

A package for another architecture than the build machine's cannot copy those distributions
from the build venv (its libraries are the build machine's); it takes them from a wheel of the
same version built for its architecture. ``fetch`` downloads those wheels from PyPI once
(``make deb`` runs packaging/fetch_wheels.py); the package build itself stays offline and only
reads the wheel directory.
"""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

from debbuild.arch import Architecture
from debbuild.errors import MissingInput
from debbuild.vendor import is_compiled

PYTHON_VERSION = "3.11"  # Debian 12's python3, which runs the box


def has_compiled_code(dist: metadata.Distribution) -> bool:
    return any(is_compiled(Path(str(f))) for f in dist.files or [])


def _wheel_prefix(dist: metadata.Distribution) -> str:
    # Wheel file names spell the distribution with underscores (PEP 491).
    name = dist.metadata["Name"].replace("-", "_").replace(".", "_").lower()
    return f"{name}-{dist.version}-"


def _unavailable(dist: metadata.Distribution, arch: Architecture, why: str) -> MissingInput:
    return MissingInput(
        f"{dist.metadata['Name']} {dist.version} has compiled code and no wheel for "
        f"{arch.name} ({arch.wheel_machine}, Python {PYTHON_VERSION}): {why}"
    )


def find_wheel(dist: metadata.Distribution, arch: Architecture, wheelhouse: Path) -> Path:
    """The wheel of ``dist`` (same version) for ``arch`` in ``wheelhouse/<arch>``."""
    directory = wheelhouse / arch.name
    prefix = _wheel_prefix(dist)
    matches = sorted(
        p
        for p in directory.glob("*.whl")
        if p.name.lower().startswith(prefix) and f"_{arch.wheel_machine}." in p.name
    )
    if not matches:
        raise _unavailable(
            dist, arch, f"none in {directory} (make deb fetches it with packaging/fetch_wheels.py)"
        )
    return matches[-1]


def fetch(dist: metadata.Distribution, arch: Architecture, wheelhouse: Path) -> Path:
    """Download the wheel of ``dist`` for ``arch`` into ``wheelhouse/<arch>`` unless it is there."""
    try:
        return find_wheel(dist, arch, wheelhouse)
    except MissingInput:
        pass  # not fetched yet: download it below
    directory = wheelhouse / arch.name
    platforms = [arg for tag in arch.wheel_platforms() for arg in ("--platform", tag)]
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--only-binary", ":all:", *platforms,
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--dest", str(directory), f"{dist.metadata['Name']}=={dist.version}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise _unavailable(dist, arch, f"PyPI has none ({last})")
    return find_wheel(dist, arch, wheelhouse)


def _skipped(member: PurePosixPath) -> bool:
    """Bytecode, scripts and install records: the same files the venv copy leaves out."""
    if "__pycache__" in member.parts or member.suffix in (".pyc", ".pyo"):
        return True
    if member.parts[0].endswith(".data"):
        return True
    return member.name in ("RECORD", "INSTALLER", "direct_url.json")


def extract(wheel: Path, target: Path) -> None:
    """Unpack ``wheel`` into ``target`` as pip would install it, minus what is skipped."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            member = PurePosixPath(info.filename)
            if info.is_dir() or _skipped(member):
                continue
            if member.is_absolute() or ".." in member.parts:
                raise MissingInput(f"{wheel.name} holds an unsafe path {info.filename!r}")
            destination = target / member
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(info))
