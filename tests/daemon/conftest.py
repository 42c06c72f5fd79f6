"""Fixtures of the daemon tests: a virtual cable process, tvpay-dongled as a real process
against it, clients, event recorders and a client running as another user."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dongle import pin_client
from dongle.client import DaemonClient, Subscription
from dongle.model import DongleEvent, Priority
from tests.fixtures.dongles import TEST_PIN, TEST_PUK, CableProcess, OperatorCA, running_cable

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
STARTUP_TIMEOUT = 30.0


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    socket_path: str
    log_path: Path
    notify: socket.socket

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self, name: str = "test", **kwargs: Any) -> DaemonClient:
        return DaemonClient(self.socket_path, client_name=name, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def wait_notify(self, expected: bytes, timeout: float = STARTUP_TIMEOUT) -> bytes:
        """The next sd_notify datagram; fails if the daemon dies or stays silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.notify.settimeout(min(0.5, deadline - time.monotonic()))
            try:
                message = self.notify.recv(4096)
            except TimeoutError:
                if self.process.poll() is not None:
                    raise AssertionError(f"tvpay-dongled exited early:\n{self.log()}") from None
                continue
            if expected in message:
                return message
        raise AssertionError(f"no {expected!r} from tvpay-dongled:\n{self.log()}")


def start_daemon(
    workdir: Path, cable: CableProcess | None, *args: str, wait_ready: bool = True
) -> DaemonProcess:
    """Run tvpay-dongled against ``cable``; returns once it has notified READY=1."""
    socket_path = str(workdir / "dongled.sock")
    notify_path = workdir / f"notify-{time.monotonic_ns()}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_path),
        "TVPAY_DONGLED_CONFIG": str(workdir / "dongled.toml"),
    }
    (workdir / "dongled.toml").touch()
    cmd = [sys.executable, "-m", "dongle.daemon.main", "--socket", socket_path]
    if cable is not None:
        cmd += ["--usb-backend", cable.backend_spec]
        cmd += ["--hotplug-source", f"{cable.hotplug_spec}?{cable.address}"]
    cmd += list(args)
    log_path = workdir / f"dongled-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=log, stdout=log)
    daemon = DaemonProcess(process, socket_path, log_path, notify)
    if wait_ready:
        daemon.wait_notify(b"READY=1")
    return daemon


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are 0700, and some tests connect as another user.
    path = Path(tempfile.mkdtemp(prefix="dongled-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cable() -> Iterator[CableProcess]:
    with running_cable(1) as cable:
        yield cable


@pytest.fixture
def daemon(workdir: Path, cable: CableProcess) -> Iterator[DaemonProcess]:
    process = start_daemon(workdir, cable, "--lease-idle-timeout", "30")
    try:
        yield process
    finally:
        process.stop()
        process.notify.close()


@pytest.fixture
def client(daemon: DaemonProcess) -> Iterator[DaemonClient]:
    client = daemon.client("test")
    try:
        yield client
    finally:
        client.close()


class EventLog:
    """Records a subscription's events; ``wait`` polls nothing, it blocks on a queue."""

    def __init__(self, client: DaemonClient) -> None:
        self.queue: queue.Queue[DongleEvent] = queue.Queue()
        self.seen: list[DongleEvent] = []
        self.subscription: Subscription = client.subscribe(self.queue.put)

    def wait(
        self, kind: str, serial: str | None = None, timeout: float = 10.0, **match: Any
    ) -> DongleEvent:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = self.queue.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(event)
            if (
                event.kind == kind
                and serial in (None, event.serial)
                and all(getattr(event, key) == value for key, value in match.items())
            ):
                return event
        raise AssertionError(f"no {kind} event for {serial} in {timeout} s; saw {self.seen}")

    def close(self) -> None:
        self.subscription.close()


@pytest.fixture
def events(client: DaemonClient) -> Iterator[EventLog]:
    log = EventLog(client)
    try:
        yield log
    finally:
        log.close()


@dataclass
class ProvisionedDongle:
    serial: str
    public_key: bytes
    key_rev: int
    pin: str = TEST_PIN
    puk: str = TEST_PUK
    extra: dict[str, Any] = field(default_factory=dict)


def provision_via_daemon(client: DaemonClient) -> ProvisionedDongle:
    """Provision the only dongle through the daemon's staff operations (the test runs as root)."""
    generated = client.generate_key()
    serial = client.info().serial
    client.write_cert(OperatorCA.create().issue(generated["public_key"], serial))
    pin_client.set_initial_pin(client, TEST_PIN, TEST_PUK)
    client.lock()
    return ProvisionedDongle(serial, generated["public_key"], generated["key_rev"])


@pytest.fixture
def provisioned(client: DaemonClient) -> ProvisionedDongle:
    return provision_via_daemon(client)


def run_as(uid: int, action: Callable[[], object], gid: int = NOBODY) -> tuple[str, str]:
    """Run ``action`` in a forked child as ``uid``; returns (outcome, detail) where outcome is
    "ok" or the name of the exception it raised."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges for good, then report through the pipe
        code = 0
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                detail = repr(action())
                outcome = "ok"
            except Exception as exc:
                outcome, detail = type(exc).__name__, str(exc)
            os.write(write_fd, f"{outcome}\n{detail}".encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child process failed before reporting"
    outcome, _, detail = data.partition("\n")
    return outcome, detail


__all__ = [
    "DaemonProcess",
    "EventLog",
    "Priority",
    "ProvisionedDongle",
    "provision_via_daemon",
    "run_as",
    "start_daemon",
]
