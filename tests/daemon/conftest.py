"""Fixtures of the daemon tests: a virtual cable process, tvpay-dongled as a real process
against it, clients, event recorders and a client running as another user."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dongle.client import DaemonClient, Subscription
from dongle.model import DongleEvent
from tests.daemon.harness import (
    DaemonProcess,
    ProvisionedDongle,
    provision_via_daemon,
    start_daemon,
)
from tests.fixtures.dongles import CableProcess, running_cable

NOBODY = 65534


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
    "ProvisionedDongle",
    "provision_via_daemon",
    "run_as",
    "start_daemon",
]
