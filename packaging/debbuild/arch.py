"""The Debian architectures a package can be built for, and the check that a staged tree
holds compiled code for its own architecture only.

A package built for arm64 on an amd64 machine takes its compiled libraries from wheels built
for aarch64; a wrong wheel, or a host library copied by mistake, would install cleanly and
only fail on the box with "cannot open shared object file". The ELF check catches that at
build time, file by file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from debbuild.errors import BuildError, SpecError


class ForeignCode(BuildError):
    """A staged file is machine code for another architecture than the package's."""


@dataclass(frozen=True, slots=True)
class Architecture:
    name: str  # Debian's name (dpkg --print-architecture)
    elf_machine: int  # e_machine of its ELF files
    triplet: str  # GNU triplet: prefix of its binutils (strip), multiarch directory
    wheel_machine: str  # the machine in its wheels' platform tags

    def wheel_platforms(self) -> list[str]:
        """pip --platform tags of the wheels that run on Debian 12 (glibc 2.36).

        pip does not widen a manylinux_2_36 tag to the older ones, so each is listed.
        """
        return [f"manylinux_2_{minor}_{self.wheel_machine}" for minor in range(36, 16, -1)]


ARCHITECTURES = {
    a.name: a
    for a in (
        Architecture("amd64", 62, "x86_64-linux-gnu", "x86_64"),
        Architecture("arm64", 183, "aarch64-linux-gnu", "aarch64"),
        Architecture("armhf", 40, "arm-linux-gnueabihf", "armv7l"),
    )
}
_ELF_MAGIC = b"\x7fELF"


def architecture(name: str) -> Architecture:
    """The architecture called ``name``; SpecError lists the known ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise SpecError(f"unknown architecture {name!r}: choose from {known}") from None


def elf_machine(path: Path) -> int | None:
    """e_machine of an ELF file, or None for anything else."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or not header.startswith(_ELF_MAGIC):
        return None
    # EI_DATA (byte 5): 1 little-endian, 2 big-endian; e_machine is the half-word at 18.
    order = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], order)


def elf_files(root: Path) -> list[Path]:
    """Every regular ELF file under ``root``, whatever its name."""
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and elf_machine(p)
    )


def check_only(root: Path, arch: Architecture) -> None:
    """Raise ForeignCode when any ELF file under ``root`` is not for ``arch``."""
    names = {a.elf_machine: a.name for a in ARCHITECTURES.values()}
    foreign = []
    for path in elf_files(root):
        machine = elf_machine(path)
        if machine != arch.elf_machine:
            what = names.get(machine or 0, f"ELF machine {machine}")
            foreign.append(f"{path.relative_to(root)} ({what})")
    if foreign:
        raise ForeignCode(
            f"the {arch.name} package would hold code for another architecture: "
            f"{', '.join(foreign)}; rebuild its wheels for {arch.name} (make deb fetches them)"
        )
