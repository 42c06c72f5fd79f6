"""Lays out one package's files in a staging directory, as they will be installed."""

from __future__ import annotations

import gzip
import importlib.metadata as metadata
import shutil
from dataclasses import dataclass
from pathlib import Path

from debbuild import arch, copyright, scripts, tools, vendor, wheels
from debbuild.errors import MissingInput
from debbuild.spec import PackageSpec

# Debian 12 still ships units, udev rules and keymaps under /lib (the merged-/usr
# transition moves them in Debian 13); sysusers.d and tmpfiles.d live in /usr/lib.
UNIT_DIR = "/lib/systemd/system"
SYSUSERS_DIR = "/usr/lib/sysusers.d"
TMPFILES_DIR = "/usr/lib/tmpfiles.d"


@dataclass(frozen=True, slots=True)
class StagedPackage:
    root: Path
    vendored: tuple[vendor.VendoredDist, ...]
    debian_depends: tuple[str, ...]
    conffiles: tuple[str, ...]
    compiled_objects: tuple[Path, ...]


def _source(repo: Path, relative: str) -> Path:
    path = repo / relative
    if not path.is_file():
        raise MissingInput(f"{relative} is missing: the package cannot be built without it")
    return path


def _expand(repo: Path, src: str, dest: str) -> list[tuple[Path, str]]:
    """(source, destination) pairs: a glob ``src`` goes into the directory ``dest``."""
    if "*" not in src:
        return [(_source(repo, src), dest)]
    matches = sorted(p for p in repo.glob(src) if p.is_file())
    if not matches:
        raise MissingInput(f"nothing matches {src}: the package cannot be built without it")
    return [(path, f"{dest.rstrip('/')}/{path.name}") for path in matches]


def _install(source: Path, root: Path, dest: str) -> None:
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _write(root: Path, dest: str, text: str) -> None:
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def _normalise_modes(root: Path) -> None:
    """0755 for directories and launchers, 0644 for everything else, whatever the umask."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        launcher = path.parent == root / "usr" / "bin"
        path.chmod(0o755 if path.is_dir() or launcher else 0o644)


def _copy_python_package(repo: Path, name: str, target: Path) -> None:
    source = repo / name
    if not (source / "__init__.py").is_file():
        raise MissingInput(f"Python package {name}/ is missing from {repo}")
    shutil.copytree(
        source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    )


def _gzip(source: Path, root: Path, dest: str) -> None:
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 and no file name in the header, like gzip -n: the package is reproducible.
    with target.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as out:
        out.write(source.read_bytes())


@dataclass(frozen=True, slots=True)
class Target:
    """The architecture a package is built for, and where its foreign wheels are."""

    arch: arch.Architecture
    wheelhouse: Path

    @property
    def native(self) -> bool:
        return self.arch.name == tools.host_architecture()


def _vendor(dist: metadata.Distribution, directory: Path, target: Target) -> None:
    # The venv's files are the build machine's; compiled code for another architecture comes
    # from that architecture's wheel of the same version.
    if target.native or not wheels.has_compiled_code(dist):
        vendor.copy_installed_files(dist, directory)
    else:
        wheels.extract(wheels.find_wheel(dist, target.arch, target.wheelhouse), directory)


def stage_package(
    spec: PackageSpec, repo: Path, root: Path, changelog: Path, target: Target
) -> StagedPackage:
    """Fill ``root`` with everything ``spec`` installs for ``target``; DEBIAN/ is left to the
    caller. ForeignCode when any file is machine code for another architecture."""
    python = spec.python
    libdir = root / python.dir.lstrip("/")
    libdir.mkdir(parents=True)
    for name in python.packages:
        _copy_python_package(repo, name, libdir)

    resolution = vendor.resolve(python.requirements, python.debian)
    for dist in resolution.vendored:
        _vendor(dist, libdir / "vendor", target)
    vendored = tuple(vendor.vendored_dist(d, python.vendor_reasons) for d in resolution.vendored)

    points = scripts.check_scripts(
        python.scripts, python.packages, scripts.entry_points(repo / "pyproject.toml")
    )
    for script, entry_point in points.items():
        text = scripts.launcher(
            script, entry_point, spec.name, python.dir, resolution.debian_modules
        )
        _write(root, f"/usr/bin/{script}", text)

    conffiles = []
    for item in spec.files:
        for source, dest in _expand(repo, item.src, item.dest):
            _install(source, root, dest)
            if item.conffile:
                conffiles.append(dest)
    for unit in spec.systemd.units:
        source = _source(repo, unit)
        _install(source, root, f"{UNIT_DIR}/{source.name}")
    _install(_source(repo, spec.systemd.sysusers), root, f"{SYSUSERS_DIR}/{spec.name}.conf")
    _install(_source(repo, spec.systemd.tmpfiles), root, f"{TMPFILES_DIR}/{spec.name}.conf")

    docdir = f"/usr/share/doc/{spec.name}"
    for doc in spec.docs:
        source = _source(repo, doc)
        _install(source, root, f"{docdir}/{source.name}")
    _gzip(changelog, root, f"{docdir}/changelog.gz")
    _write(root, f"{docdir}/copyright", copyright.copyright_text(spec, vendored))

    # Before strip: another architecture's file gets the clear error, not strip's.
    arch.check_only(root, target.arch)
    compiled = tuple(
        sorted(p for p in (libdir / "vendor").rglob("*") if p.is_file() and vendor.is_compiled(p))
    )
    tools.strip(compiled, target.arch, native=target.native)
    _normalise_modes(root)
    return StagedPackage(
        root=root,
        vendored=vendored,
        debian_depends=resolution.debian_depends,
        conffiles=tuple(conffiles),
        compiled_objects=compiled,
    )
