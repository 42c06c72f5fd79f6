"""Builds one package: stage the files, write DEBIAN/, run dpkg-deb."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from debbuild import control, maintscripts, stage, tools
from debbuild.spec import PackageSpec


def _architecture(staged: stage.StagedPackage, target: stage.Target) -> str:
    # Vendored compiled extensions tie the package to the architecture they were built for.
    return target.arch.name if staged.compiled_objects else "all"


def _python_depends(staged: stage.StagedPackage) -> tuple[str, ...]:
    depends = ["python3 (>= 3.11)"]
    if any(".cpython-311-" in p.name for p in staged.compiled_objects):
        depends.append("python3 (<< 3.12)")
    return tuple(depends)


# What the maintainer scripts call: deb-systemd-helper/-invoke and systemd-sysusers.
_SYSTEM_DEPENDS = (
    "init-system-helpers (>= 1.54~)",
    "systemd | systemd-standalone-sysusers | systemd-sysusers",
)


def _clamp_mtimes(root: Path, timestamp: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.utime(path, (timestamp, timestamp), follow_symlinks=False)


def build_package(
    spec: PackageSpec, repo: Path, out_dir: Path, changelog: Path, target: stage.Target
) -> Path:
    """Build ``spec`` for ``target`` into ``out_dir``; returns the .deb path."""
    entry = tools.parse_changelog(changelog)
    with tempfile.TemporaryDirectory(prefix=f"{spec.name}-") as scratch:
        root = Path(scratch) / "root"
        staged = stage.stage_package(spec, repo, root, changelog, target)
        depends = (
            *_python_depends(staged),
            *staged.debian_depends,
            *tools.shared_library_depends(list(staged.compiled_objects), target.arch),
            *spec.depends,
            *_SYSTEM_DEPENDS,
        )
        fields = control.ControlFields(
            package=spec.name,
            source=entry.source,
            version=entry.version,
            architecture=_architecture(staged, target),
            maintainer=entry.maintainer,
            section=spec.section,
            depends=depends,
            recommends=spec.recommends,
            summary=spec.summary,
            description=spec.description,
        )
        inputs = maintscripts.ScriptInputs(
            package=spec.name,
            libdir=spec.python.dir,
            units=tuple(Path(u).name for u in spec.systemd.units),
            start_on_install=spec.systemd.start_on_install,
            sysusers=f"{spec.name}.conf",
            tmpfiles=f"{spec.name}.conf",
            reload_udev=any(f.dest.startswith("/lib/udev/rules.d/") for f in spec.files),
        )
        debian = root / "DEBIAN"
        debian.mkdir(mode=0o755)
        files = {
            "control": (control.control_text(fields, control.installed_size_kib(root)), 0o644),
            "md5sums": (control.md5sums_text(root, staged.conffiles), 0o644),
            "conffiles": (control.conffiles_text(staged.conffiles), 0o644),
            "postinst": (maintscripts.postinst(inputs), 0o755),
            "prerm": (maintscripts.prerm(inputs), 0o755),
            "postrm": (maintscripts.postrm(inputs), 0o755),
        }
        for name, (text, mode) in files.items():
            if text:
                (debian / name).write_text(text, encoding="utf-8")
                (debian / name).chmod(mode)
        _clamp_mtimes(root, entry.timestamp)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{spec.name}_{entry.version}_{fields.architecture}.deb"
        for stale in out_dir.glob(f"{spec.name}_*_{fields.architecture}.deb"):
            stale.unlink()
        tools.build_deb(root, target)
        shutil.rmtree(root)
    return target
