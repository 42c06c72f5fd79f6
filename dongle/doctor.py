"""``tvpay-dongle doctor``: find out why the dongle does not work on this box, and say what to do.

Checks, in the order a person would fix them: libusb present, the udev rule installed, the
dongle's device node reachable by the daemon's group, the daemon answering on its socket, and
each dongle's state and holder (a dongle that is busy is not missing). The staff CLI mounts
``add_options`` and ``report`` as its ``doctor`` subcommand; it also runs as
``python -m dongle.doctor``.
"""

from __future__ import annotations

import argparse
import grp
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dongle.client import DaemonClient, default_socket_path
from dongle.errors import DaemonError
from protocol.usb import DEFAULT_PID, DEFAULT_VID

RULE_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d")
DEVICE_GROUP = "tvpay-dongled"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def render(self) -> str:
        mark = " ok " if self.ok else "FAIL"
        line = f"[{mark}] {self.name}: {self.detail}"
        return f"{line}\n       -> {self.fix}" if self.fix and not self.ok else line


def check_libusb() -> Check:
    import usb.backend.libusb1

    if usb.backend.libusb1.get_backend() is not None:
        return Check("libusb", True, "libusb-1.0 is installed")
    return Check(
        "libusb", False, "libusb-1.0 cannot be loaded", "install it: apt install libusb-1.0-0"
    )


def check_udev_rule(rule_dirs: Iterable[str], vid: int, pid: int) -> Check:
    wanted = (f'"{vid:04x}"', f'"{pid:04x}"')
    for directory in rule_dirs:
        for rule in sorted(Path(directory).glob("*.rules")):
            try:
                text = rule.read_text(encoding="utf-8", errors="replace").lower()
            except OSError:
                continue
            if all(token in text for token in wanted):
                return Check("udev rule", True, f"{rule} matches {vid:04x}:{pid:04x}")
    return Check(
        "udev rule",
        False,
        f"no rule in {', '.join(rule_dirs)} matches {vid:04x}:{pid:04x}",
        "install packaging/udev/70-tvpay-dongle.rules into /etc/udev/rules.d, then run "
        "'udevadm control --reload && udevadm trigger' and re-plug the dongle",
    )


def check_device_nodes(sys_root: Path, dev_root: Path, vid: int, pid: int) -> Check:
    nodes = []
    for device in sorted(sys_root.glob("*")):
        try:
            found = (
                int((device / "idVendor").read_text(), 16),
                int((device / "idProduct").read_text(), 16),
            )
            bus = int((device / "busnum").read_text())
            dev = int((device / "devnum").read_text())
        except (OSError, ValueError):
            continue
        if found == (vid, pid):
            nodes.append(dev_root / f"{bus:03d}" / f"{dev:03d}")
    if not nodes:
        return Check(
            "device node",
            False,
            "no payment dongle is on the USB bus",
            "insert the payment dongle (or try another USB port or cable)",
        )
    problems = [p for p in (_node_problem(node) for node in nodes) if p]
    if problems:
        return Check(
            "device node",
            False,
            "; ".join(problems),
            f"the udev rule must give group {DEVICE_GROUP} read/write access: install it and "
            "re-plug the dongle",
        )
    return Check(
        "device node", True, ", ".join(str(n) for n in nodes) + f" usable by {DEVICE_GROUP}"
    )


def _node_problem(node: Path) -> str:
    try:
        info = node.stat()
    except OSError as exc:
        return f"{node}: {exc.strerror}"
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    mode = stat.S_IMODE(info.st_mode)
    if group == DEVICE_GROUP and mode & 0o060 == 0o060:
        return ""
    return f"{node} is mode {mode:04o} group {group}"


def check_daemon(socket_path: str) -> list[Check]:
    client = DaemonClient(socket_path, client_name="doctor", timeout=3.0)
    try:
        devices = client.devices()
    except DaemonError as exc:
        return [Check("daemon", False, str(exc), "see 'journalctl -u tvpay-dongled' for its log")]
    finally:
        client.close()
    checks = [Check("daemon", True, f"answers at {socket_path}, {len(devices)} dongle(s) open")]
    if not devices:
        checks.append(
            Check("dongles", False, "the daemon has no dongle open", "insert the payment dongle")
        )
    for info in devices:
        holder = f"held by {info.held_by.describe()}" if info.held_by else "free"
        checks.append(
            Check(
                f"dongle {info.serial}",
                info.state != "pin_blocked",
                f"state {info.state}, {holder}, PIN tries left {info.pin_retries}",
                "the PIN is blocked: telecom staff unblock it with the PUK",
            )
        )
    return checks


def run_checks(args: argparse.Namespace) -> list[Check]:
    vid, pid = int(args.vid, 0), int(args.pid, 0)
    return [
        check_libusb(),
        check_udev_rule(args.rules_dir or RULE_DIRS, vid, pid),
        check_device_nodes(Path(args.sys_root), Path(args.dev_root), vid, pid),
        *check_daemon(args.socket),
    ]


def add_options(parser: argparse.ArgumentParser, *, socket: bool = True) -> None:
    """The doctor's options; ``socket=False`` when the parser already has a ``--socket``."""
    if socket:
        parser.add_argument("--socket", default=default_socket_path(), help="daemon socket")
    parser.add_argument("--vid", default=f"0x{DEFAULT_VID:04x}", help="dongle's USB vendor id")
    parser.add_argument("--pid", default=f"0x{DEFAULT_PID:04x}", help="dongle's USB product id")
    parser.add_argument(
        "--rules-dir", action="append", help="udev rules directory to search (repeatable)"
    )
    parser.add_argument("--sys-root", default="/sys/bus/usb/devices", help=argparse.SUPPRESS)
    parser.add_argument("--dev-root", default="/dev/bus/usb", help=argparse.SUPPRESS)


def report(args: argparse.Namespace) -> int:
    """Print every check and a summary; 1 when any check failed."""
    checks = run_checks(args)
    for check in checks:
        print(check.render())
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tvpay-dongle doctor", description="Check why the payment dongle does not work."
    )
    add_options(parser)
    return report(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
