"""Connection caps: a user flooding the daemon with connections is refused with a typed answer
while the household keeps paying; the daemon survives running out of file descriptors."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dongle.errors import TooManyConnections
from tests.daemon.conftest import (
    NOBODY,
    DaemonProcess,
    EventLog,
    provision_via_daemon,
    start_daemon,
)
from tests.daemon.neighbour import greet, noisy_neighbour
from tests.daemon.test_signing import _verifies, pay
from tests.fixtures.dongles import CableProcess, payment_fields


def _capped_daemon(
    workdir: Path, cable: CableProcess, per_uid: int, total: int
) -> Iterator[DaemonProcess]:
    (workdir / "dongled.toml").write_text(
        '[access]\nusers = ["nobody"]\n'
        f"[clients]\nmax_per_uid = {per_uid}\nmax_total = {total}\n"
        "send_timeout = 1.0\nmessage_timeout = 2.0\n"
    )
    daemon = start_daemon(workdir, cable, "--socket-mode", "0666")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def capped(workdir: Path, cable: CableProcess) -> Iterator[DaemonProcess]:
    yield from _capped_daemon(workdir, cable, per_uid=4, total=16)


@pytest.fixture
def tight(workdir: Path, cable: CableProcess) -> Iterator[DaemonProcess]:
    yield from _capped_daemon(workdir, cable, per_uid=2, total=3)


def test_a_flooding_user_is_capped_while_the_household_pays(capped: DaemonProcess) -> None:
    with capped.client("tvapp") as tv:
        dongle = provision_via_daemon(tv)
        with noisy_neighbour(capped.socket_path, NOBODY, NOBODY, count=7) as greeted:
            # Four admitted (one now floods, one stalls mid-message), three refused with an answer.
            assert greeted == ["ok"] * 4 + ["too_many_connections:4"] * 3
            fields = payment_fields()
            with tv.acquire(wait=5):
                signed = pay(tv, fields)
            assert _verifies(dongle, fields, signed)
        assert capped.process.poll() is None
    log = capped.log()
    assert "event=client_refused" in log and f"uid={NOBODY}" in log


def test_the_total_cap_refuses_with_a_typed_error_and_frees_slots(
    tight: DaemonProcess,
) -> None:
    first, second = tight.client("first"), tight.client("second")
    events = EventLog(first)  # the subscription is root's second connection
    try:
        first.acquire()
        with noisy_neighbour(tight.socket_path, NOBODY, NOBODY, count=2) as greeted:
            assert greeted == ["ok", "too_many_connections:3"]
        with pytest.raises(TooManyConnections, match=r"max_per_uid") as caught:
            second.ping(b"a third connection for root")
        assert caught.value.limit == 2
        first.close()  # its slot is given back before its lease ends
        events.wait("lease_changed", holder=None)
        assert second.ping(b"now there is room") == b"now there is room"
    finally:
        events.close()
        second.close()


def _fds(pid: int) -> list[int]:
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def test_out_of_file_descriptors_is_answered_not_fatal(daemon: DaemonProcess) -> None:
    pid = daemon.process.pid
    with daemon.client("before") as before:
        assert before.ping(b"x") == b"x"
        limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # No descriptor number left above the highest in use: only holes below it remain.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (max(_fds(pid)) + 1, limits[1]))
        held: list[socket.socket] = []
        try:
            for _ in range(64):
                held.append(_connect(daemon.socket_path))
                if (outcome := greet(held[-1])) != "ok":
                    break
            assert outcome == "too_many_connections:0"
            assert before.ping(b"still served") == b"still served"
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
            for sock in held:
                sock.close()
        with daemon.client("after") as after:
            assert after.ping(b"y") == b"y"
    assert daemon.process.poll() is None
    assert "out of file descriptors" in daemon.log()


def test_accept_failing_pauses_instead_of_spinning(daemon: DaemonProcess) -> None:
    pid = daemon.process.pid
    limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    spare = max(fd for fd in _fds(pid) if os.readlink(f"/proc/{pid}/fd/{fd}") == os.devnull)
    # Below the spare descriptor's number: closing it frees nothing accept() could use.
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (spare, limits[1]))
    held: list[socket.socket] = []
    try:
        for _ in range(spare - len([fd for fd in _fds(pid) if fd < spare])):
            held.append(_connect(daemon.socket_path))  # fill the holes below the limit
            assert greet(held[-1]) == "ok"
        waiting = _connect(daemon.socket_path)  # stays in the backlog: accept() fails
        held.append(waiting)
        cpu = _cpu_seconds(pid)
        time.sleep(1.0)  # a measuring window, not a synchronisation: a spinning loop burns it
        assert _cpu_seconds(pid) - cpu < 0.3
        assert "event=accept_failed" in daemon.log()
        assert daemon.process.poll() is None
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
    try:
        assert greet(waiting) == "ok"  # accepted once the pause is over
    finally:
        for sock in held:
            sock.close()


def test_the_soft_descriptor_limit_is_raised_at_start(workdir: Path, cable: CableProcess) -> None:
    own = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, own[1]))  # inherited by the daemon
    try:
        daemon = start_daemon(workdir, cable)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, own)
    try:
        assert resource.prlimit(daemon.process.pid, resource.RLIMIT_NOFILE) == (own[1], own[1])
    finally:
        daemon.stop()
