"""DEBIAN/control, md5sums and conffiles of a staged tree."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ControlFields:
    package: str
    source: str
    version: str
    architecture: str
    maintainer: str
    section: str
    depends: tuple[str, ...]
    recommends: tuple[str, ...]
    summary: str
    description: str


def installed_size_kib(root: Path) -> int:
    """What dpkg-gencontrol reports: file sizes in KiB rounded up, one per directory entry."""
    total = 0
    for path in root.rglob("*"):
        if path.relative_to(root).parts[0] == "DEBIAN":
            continue
        total += (path.lstat().st_size + 1023) // 1024 if path.is_file() else 1
    return total


def _description(summary: str, body: str) -> str:
    lines = [f"Description: {summary}"]
    for line in body.splitlines():
        lines.append(" ." if line.strip() in ("", ".") else f" {line}")
    return "\n".join(lines)


def control_text(fields: ControlFields, installed_size: int) -> str:
    entries = [
        ("Package", fields.package),
        ("Source", fields.source),
        ("Version", fields.version),
        ("Architecture", fields.architecture),
        ("Maintainer", fields.maintainer),
        ("Installed-Size", str(installed_size)),
        ("Depends", ", ".join(fields.depends)),
        ("Recommends", ", ".join(fields.recommends)),
        ("Section", fields.section),
        ("Priority", "optional"),
    ]
    head = "\n".join(f"{key}: {value}" for key, value in entries if value)
    return f"{head}\n{_description(fields.summary, fields.description)}\n"


def md5sums_text(root: Path, conffiles: tuple[str, ...]) -> str:
    """md5sums of every regular file except DEBIAN/ and conffiles, as dh_md5sums writes it."""
    lines = []
    skip = {c.lstrip("/") for c in conffiles}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        relative_dir = Path(dirpath).relative_to(root)
        if relative_dir.parts[:1] == ("DEBIAN",):
            continue
        for name in sorted(filenames):
            path = Path(dirpath) / name
            relative = (relative_dir / name).as_posix()
            if path.is_symlink() or relative in skip:
                continue
            digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            lines.append(f"{digest}  {relative}")
    return "\n".join(lines) + "\n"


def conffiles_text(conffiles: tuple[str, ...]) -> str:
    return "".join(f"{path}\n" for path in conffiles)
