"""A Debian 12 root of another architecture (arm64), run on this machine through qemu-user and
binfmt_misc, for installing and running the box package as a set-top box would.

The root holds Debian's python3 and the box package's Debian dependencies, so installing the
package with apt needs nothing from the network. Building it takes minutes (mmdebstrap, most of
it under emulation), so it is kept as a tarball outside the checkout, named after what it holds:
a change of the package list makes a new one, later runs reuse it. Each test session unpacks
its own copy, so nothing a test does survives into the next run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# The box package's Depends (packaging/debian/tvpay-box.toml and what the builder adds), and
# Mesa for the TV app's headless drawing (SDL's offscreen driver over EGL).
PACKAGES = (
    "fonts-wqy-microhei",
    "init-system-helpers",
    "libegl1",
    "libgl1-mesa-dri",
    "libmtdev1",
    "libusb-1.0-0",
    "python3",
    "python3-babel",
    "python3-cryptography",
    "python3-evdev",
    "python3-kivy",
    "python3-pil",
    "python3-pyudev",
    "python3-qrcode",
    "python3-requests",
    "python3-rich",
    "python3-usb",
    "systemd",
)
QEMU = {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}
BINFMT = Path("/proc/sys/fs/binfmt_misc")
ROOT_BUILD_TIMEOUT = 3000  # within the tests' own limit (test_arm64_box.py)
# The host's own proxy settings and Python paths must not leak into the box.
BOX_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def cache_dir() -> Path:
    """Where root tarballs are kept: $TVPAY_ROOT_CACHE, else /var/cache (root) or ~/.cache."""
    if os.environ.get("TVPAY_ROOT_CACHE"):
        return Path(os.environ["TVPAY_ROOT_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/tvpay-foreign-roots")
    return Path.home() / ".cache" / "tvpay-foreign-roots"


def emulation_unavailable(arch: str) -> str | None:
    """Why ``arch`` programs cannot run here (one line), or None when they can."""
    if os.geteuid() != 0:
        return "installing into a foreign root needs root (chroot, mount)"
    entry = BINFMT / QEMU[arch]
    if not (BINFMT / "status").exists():
        return f"binfmt_misc is not mounted (mount -t binfmt_misc binfmt_misc {BINFMT})"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        return f"no binfmt entry {entry}: apt-get install qemu-user-static binfmt-support"
    # F: the kernel opens qemu when registering, so programs inside a chroot find it too.
    if "F" not in next(x for x in entry.read_text().splitlines() if x.startswith("flags")):
        return f"{entry} lacks the F flag: chrooted {arch} programs would not find qemu"
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed: apt-get install mmdebstrap arch-test"
    return None


def root_tarball(arch: str) -> Path:
    """The cached root for ``arch``, built first when missing (atomically: a failed or
    interrupted build leaves no tarball behind)."""
    recipe = {"arch": arch, "suite": SUITE, "mirror": MIRROR, "packages": sorted(PACKAGES)}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    target = cache_dir() / f"{SUITE}-{arch}-{key}.tar"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.tar")
    command = [
        "mmdebstrap", f"--arch={arch}", "--variant=apt", f"--include={','.join(PACKAGES)}",
        SUITE, str(partial), f"deb {MIRROR} {SUITE} main",
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=ROOT_BUILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"mmdebstrap failed: {result.stderr.strip()[-2000:]}")
    os.replace(partial, target)
    return target


class ForeignBox:
    """One unpacked root; programs run in it through chroot with the box's environment."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, inside: str) -> Path:
        """The host path of ``inside`` (an absolute path in the box)."""
        return self.root / inside.lstrip("/")

    def command(self, argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
        pairs = [f"{k}={v}" for k, v in {**BOX_ENV, **(env or {})}.items()]
        return ["chroot", str(self.root), "/usr/bin/env", "-i", *pairs, *argv]

    def run(
        self, argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv, env), capture_output=True, text=True, timeout=timeout, check=False
        )


def _mount(args: list[str]) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _mounted_under(root: Path) -> list[str]:
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [p for p in points if p == str(root) or p.startswith(f"{root}/")]


@contextmanager
def unpacked(tarball: Path, binds: Sequence[Path] = ()) -> Iterator[ForeignBox]:
    """A fresh copy of the root with /proc, /sys and each of ``binds`` (a host directory, seen
    at the same path inside) mounted; everything unmounted and removed afterwards. /dev is the
    tarball's own (mmdebstrap writes its device nodes), never the host's."""
    root = Path(tempfile.mkdtemp(prefix="tvpay-foreign-root-"))
    with tarfile.open(tarball) as archive:
        archive.extractall(root, filter="fully_trusted")
    try:
        for fstype, where in (("proc", "proc"), ("sysfs", "sys")):
            _mount(["-t", fstype, fstype, str(root / where)])
        # A private pseudo-terminal instance: apt and dpkg log through one.
        _mount(["-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts", str(root / "dev/pts")])
        for source in binds:
            target = root / str(source).lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            _mount(["--bind", str(source), str(target)])
            # Unmounting it later must never reach the host's own mount.
            _mount(["--make-private", str(target)])
        # apt and the TV app look names up; the root has no resolver of its own.
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        yield ForeignBox(root)
    finally:
        for point in sorted(_mounted_under(root), reverse=True):
            subprocess.run(["umount", "--lazy", point], check=False)
        left = _mounted_under(root)
        if left:
            # Removing the tree now would delete files of the host through the mounts.
            raise RuntimeError(f"still mounted, {root} left in place: {', '.join(left)}")
        shutil.rmtree(root)


# What the emulator's automation API (emulator/automation) runs on, for a test harness inside
# the root: not part of the box package, so not in the root either.
AUTOMATION_DISTS = ("fastapi", "uvicorn", "pydantic")
WHEEL_MACHINE = {"arm64": "aarch64", "armhf": "armv7l"}


def automation_site(arch: str) -> Path:
    """A directory (for PYTHONPATH inside the root) holding the automation API's libraries, in
    the venv's versions, built for ``arch``; downloaded from PyPI once, then cached."""
    pins = [f"{name}=={metadata.version(name)}" for name in AUTOMATION_DISTS]
    key = hashlib.sha256(json.dumps([arch, pins]).encode()).hexdigest()[:16]
    target = cache_dir() / f"automation-{arch}-{key}"
    if target.exists():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # Wheels that run on Debian 12 (glibc 2.36); pip wants every manylinux level listed.
    platforms = [f"manylinux_2_{minor}_{WHEEL_MACHINE[arch]}" for minor in range(36, 16, -1)]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
        "--only-binary", ":all:", *(a for p in platforms for a in ("--platform", p)),
        "--python-version", "3.11", "--implementation", "cp", "--target", str(partial), *pins,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"cannot fetch the automation API's libraries: {result.stderr[-1500:]}")
    os.replace(partial, target)
    return target
