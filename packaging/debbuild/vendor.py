"""Which Python distributions a package takes from Debian and which it carries itself.

The dependency closure is read from the metadata of the distributions installed in the
interpreter running the build (the project's venv), so the build needs no network. A
distribution mapped to a Debian package becomes a Depends and its own requirements are
Debian's business; every other one is copied, file by file from its RECORD, into the
package's private vendor directory.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from debbuild.errors import MissingInput


@dataclass(frozen=True, slots=True)
class VendoredDist:
    name: str
    version: str
    license: str
    reason: str


@dataclass(frozen=True, slots=True)
class Resolution:
    debian_depends: tuple[str, ...]
    debian_modules: dict[str, str]  # top-level import name -> Debian package providing it
    vendored: tuple[metadata.Distribution, ...]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise MissingInput(
            f"the Python distribution {name!r} is not installed in the build environment: "
            "run 'make setup' and build with .venv/bin/python"
        ) from None


def _requirements(dist: metadata.Distribution) -> list[str]:
    """Names of ``dist``'s unconditional requirements on this platform (no extras)."""
    names = []
    for line in dist.requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def top_level_modules(dist: metadata.Distribution) -> set[str]:
    """The import names ``dist`` provides: the launcher names its Debian package by them.

    Debian's own metadata (egg-info written by dh_python3) has top_level.txt but no file
    list, so top_level.txt comes first and the installed-file list is the fallback.
    """
    listed = (dist.read_text("top_level.txt") or "").split()
    if listed:
        return set(listed)
    names = set()
    for entry in dist.files or []:
        first = Path(str(entry)).parts[0]
        if first == ".." or first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        names.add(first.split(".")[0])
    if not names:
        raise MissingInput(
            f"cannot tell which modules {dist.metadata['Name']} provides: its metadata has "
            "neither top_level.txt nor a file list; reinstall it in the build environment"
        )
    return names


def resolve(requirements: tuple[str, ...], debian: dict[str, str]) -> Resolution:
    """Split the closure of ``requirements`` into Debian packages and distributions to vendor."""
    debian_by_name = {normalize(k): v for k, v in debian.items()}
    depends: list[str] = []
    modules: dict[str, str] = {}
    vendored: dict[str, metadata.Distribution] = {}
    pending = list(requirements)
    while pending:
        name = normalize(pending.pop())
        if name in debian_by_name:
            if debian_by_name[name] not in depends:
                depends.append(debian_by_name[name])
                for module in top_level_modules(_distribution(name)):
                    modules[module] = debian_by_name[name]
            continue
        if name in vendored:
            continue
        dist = _distribution(name)
        vendored[name] = dist
        pending.extend(_requirements(dist))
    ordered = tuple(vendored[k] for k in sorted(vendored))
    return Resolution(
        debian_depends=tuple(sorted(depends)), debian_modules=modules, vendored=ordered
    )


def is_compiled(path: Path) -> bool:
    """A shared object: a compiled extension module or a library it loads."""
    return path.suffix == ".so" or ".so." in path.name


def _license(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression
    classifiers = [
        c.rsplit("::", 1)[1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    if classifiers:
        return " or ".join(classifiers)
    text = (meta.get("License") or "").strip()
    return text.splitlines()[0][:80] if text else "see its dist-info directory"


def copy_installed_files(dist: metadata.Distribution, target: Path) -> None:
    """Copy the installed files of ``dist`` (no bytecode, no scripts) under ``target``."""
    for entry in dist.files or []:
        relative = Path(str(entry))
        if relative.parts[0] == ".." or "__pycache__" in relative.parts:
            continue
        if relative.suffix in (".pyc", ".pyo") or relative.name in ("RECORD", "INSTALLER"):
            continue
        if relative.name == "direct_url.json":
            continue
        source = Path(str(dist.locate_file(entry)))
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


def vendored_dist(dist: metadata.Distribution, reasons: dict[str, str]) -> VendoredDist:
    """What the copyright file says about a vendored ``dist``: version, license, why."""
    name = normalize(dist.metadata["Name"])
    reason = reasons.get(name) or reasons.get(dist.metadata["Name"]) or ""
    if not reason:
        reason = "required by another vendored distribution"
    return VendoredDist(
        name=dist.metadata["Name"],
        version=dist.version,
        license=_license(dist),
        reason=reason,
    )
