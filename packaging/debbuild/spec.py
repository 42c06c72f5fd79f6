"""The description of one Debian package, read from packaging/debian/<name>.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debbuild.errors import SpecError


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A repository file installed at ``dest``; conffiles are the operator's to edit."""

    src: str
    dest: str
    conffile: bool = False


@dataclass(frozen=True, slots=True)
class PythonPart:
    dir: str
    packages: tuple[str, ...]
    scripts: tuple[str, ...]
    requirements: tuple[str, ...]
    debian: dict[str, str]  # distribution name -> Debian package providing it
    vendor_reasons: dict[str, str]  # distribution name -> why Debian's is not used


@dataclass(frozen=True, slots=True)
class SystemdPart:
    units: tuple[str, ...]
    sysusers: str
    tmpfiles: str
    start_on_install: bool = True


@dataclass(frozen=True, slots=True)
class PackageSpec:
    name: str
    section: str
    summary: str
    description: str
    python: PythonPart
    systemd: SystemdPart
    depends: tuple[str, ...] = ()
    recommends: tuple[str, ...] = ()
    # Debian architectures built by default; empty: the build machine's only.
    architectures: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    files: tuple[StagedFile, ...] = field(default_factory=tuple)


def _table(data: dict[str, Any], key: str, source: Path) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise SpecError(f"{source}: missing [{key}] table")
    return value


def _strings(table: dict[str, Any], key: str, source: Path) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{source}: {key} must be a list of strings")
    return tuple(value)


def _text(table: dict[str, Any], key: str, source: Path) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{source}: {key} must be a non-empty string")
    return value.strip()


def load_spec(path: Path) -> PackageSpec:
    """Parse and check a package description; SpecError names the bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"cannot read the package description {path}: {exc}") from None
    package = _table(data, "package", path)
    python = _table(data, "python", path)
    systemd = _table(data, "systemd", path)
    files = []
    for entry in data.get("files", []):
        if not isinstance(entry, dict):
            raise SpecError(f"{path}: each [[files]] entry must be a table")
        files.append(
            StagedFile(
                src=_text(entry, "src", path),
                dest=_text(entry, "dest", path),
                conffile=bool(entry.get("conffile", False)),
            )
        )
    return PackageSpec(
        name=_text(package, "name", path),
        section=_text(package, "section", path),
        summary=_text(package, "summary", path),
        description=_text(package, "description", path),
        depends=_strings(package, "depends", path),
        recommends=_strings(package, "recommends", path),
        architectures=_strings(package, "architectures", path),
        docs=_strings(package, "docs", path),
        python=PythonPart(
            dir=_text(python, "dir", path),
            packages=_strings(python, "packages", path),
            scripts=_strings(python, "scripts", path),
            requirements=_strings(python, "requirements", path),
            debian=dict(python.get("debian", {})),
            vendor_reasons=dict(python.get("vendor_reasons", {})),
        ),
        systemd=SystemdPart(
            units=_strings(systemd, "units", path),
            sysusers=_text(systemd, "sysusers", path),
            tmpfiles=_text(systemd, "tmpfiles", path),
            start_on_install=bool(systemd.get("start_on_install", True)),
        ),
        files=tuple(files),
    )
