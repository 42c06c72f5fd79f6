"""The dpkg tools the build calls, each wrapped so a failure names the tool and its output."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from debbuild.arch import Architecture
from debbuild.errors import MissingInput, ToolFailed


def run(
    args: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    provider: str = "dpkg-dev",
) -> str:
    """Run a tool; ``provider`` is the Debian package that installs it."""
    if shutil.which(args[0]) is None:
        raise MissingInput(f"{args[0]} is not installed: run 'make setup' (installs {provider})")
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise ToolFailed(f"{' '.join(args[:2])} failed (exit {result.returncode}): {output}")
    return result.stdout


@dataclass(frozen=True, slots=True)
class ChangelogEntry:
    source: str
    version: str
    maintainer: str
    timestamp: int


def parse_changelog(path: Path) -> ChangelogEntry:
    """The newest entry of a Debian changelog (dpkg-parsechangelog)."""
    fields = {}
    for line in run(["dpkg-parsechangelog", "-l", str(path)]).splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            fields[key] = value.strip()
    return ChangelogEntry(
        source=fields["Source"],
        version=fields["Version"],
        maintainer=fields["Maintainer"],
        timestamp=int(fields["Timestamp"]),
    )


@functools.cache
def host_architecture() -> str:
    return run(["dpkg", "--print-architecture"]).strip()


def shared_library_depends(objects: list[Path], arch: Architecture) -> tuple[str, ...]:
    """Depends for the shared libraries that ``objects`` link against (dpkg-shlibdeps).

    For another architecture than the build machine's, dpkg-shlibdeps reads that
    architecture's libraries and symbols files (libc6:<arch>, libgcc-s1:<arch>, installed by
    scripts/system-deps.sh through dpkg's multiarch support), as a Debian cross build does.
    """
    if not objects:
        return ()
    with tempfile.TemporaryDirectory(prefix="shlibdeps-") as scratch:
        debian = Path(scratch) / "debian"
        debian.mkdir()
        # dpkg-shlibdeps reads the source package's control file; a stub is enough.
        (debian / "control").write_text(
            "Source: stub\n\nPackage: stub\nArchitecture: any\n", encoding="utf-8"
        )
        args = ["dpkg-shlibdeps", "-O", "--warnings=0", *(f"-e{o}" for o in objects)]
        env = {**os.environ, "DEB_HOST_ARCH": arch.name}
        provider = f"dpkg-dev, libc6:{arch.name} and libgcc-s1:{arch.name}"
        output = run(args, cwd=Path(scratch), env=env, provider=provider)
    _, _, value = output.strip().partition("shlibs:Depends=")
    return tuple(d.strip() for d in value.split(",") if d.strip())


def strip(objects: tuple[Path, ...], arch: Architecture, *, native: bool) -> None:
    """Strip debugging symbols from shared objects, with dh_strip's options; the build
    machine's strip reads only its own architecture, another one needs its cross binutils."""
    if objects:
        tool = "strip" if native else f"{arch.triplet}-strip"
        provider = "binutils" if native else f"binutils-{arch.triplet}"
        args = [tool, "--remove-section=.comment", "--remove-section=.note"]
        run([*args, "--strip-unneeded", *map(str, objects)], provider=provider)


def build_deb(stage: Path, out: Path) -> None:
    # xz level 1: a sixth of level 6's time for a 15% bigger gateway package (mostly the
    # vendored compiled extensions), which keeps the package checks in make test quick.
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "-z1", "--build", str(stage), str(out)])
