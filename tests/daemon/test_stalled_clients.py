"""Clients that stall: half a message, replies never read, nothing at all. Each is dropped within
its configured time-out, and a lease it held is released for the others."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dongle.model import LeaseHolder
from dongle.wire import MessageStream, encode
from tests.daemon.conftest import DaemonProcess, EventLog, start_daemon
from tests.fixtures.dongles import CableProcess


@pytest.fixture(params=["message_timeout = 1.0\nsend_timeout = 1.0\n"], ids=["1s"])
def impatient(
    workdir: Path, cable: CableProcess, request: pytest.FixtureRequest
) -> Iterator[DaemonProcess]:
    (workdir / "dongled.toml").write_text(f"[clients]\n{request.param}")
    daemon = start_daemon(workdir, cable)
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def watcher(impatient: DaemonProcess) -> Iterator[EventLog]:
    with impatient.client("watcher") as client:
        log = EventLog(client)
        try:
            yield log
        finally:
            log.close()


def _holder(daemon: DaemonProcess, events: EventLog) -> tuple[socket.socket, MessageStream]:
    """A raw connection that holds the dongle's lease."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(daemon.socket_path)
    stream = MessageStream(sock)
    stream.write({"v": 1, "id": 1, "op": "acquire", "args": {"wait_ms": 0}})
    reply = stream.read()
    assert reply is not None and reply["ok"] is True
    events.wait("lease_changed", holder=LeaseHolder.from_wire(reply["result"]["holder"]))
    return sock, stream


def test_half_a_message_then_silence_ends_the_connection_and_its_lease(
    impatient: DaemonProcess, watcher: EventLog
) -> None:
    sock, stream = _holder(impatient, watcher)
    with sock:
        sock.sendall(struct.pack(">I", 100) + b"\xa3\x61v\x01")  # promises 100 bytes, sends 4
        watcher.wait("lease_changed", holder=None)
        answer = stream.read()
        assert answer is not None and answer["error"]["code"] == "message_timeout"
        assert "send each message whole" in answer["error"]["message"]
    with impatient.client("next") as other:
        assert other.acquire().holder.client == "next"


def test_a_client_that_never_reads_is_dropped_and_its_lease_released(
    impatient: DaemonProcess, watcher: EventLog
) -> None:
    sock, _ = _holder(impatient, watcher)
    ping = encode({"v": 1, "id": 2, "op": "ping", "args": {"data": b"r" * 8000}})

    def flood() -> None:
        try:
            for _ in range(1000):  # ~8 MB of answers it will never read
                sock.sendall(ping)
        except OSError:
            pass  # the daemon hung up: what this test waits for

    sock.settimeout(None)
    sender = threading.Thread(target=flood)
    sender.start()
    try:
        watcher.wait("lease_changed", holder=None, timeout=30)
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sender.join(10)
        sock.close()
    assert 'reason="not reading"' in impatient.log()


@pytest.mark.parametrize("impatient", ["idle_timeout = 1.0\n"], indirect=True, ids=["idle-1s"])
def test_an_idle_connection_is_closed_but_a_subscriber_is_kept(
    impatient: DaemonProcess, watcher: EventLog
) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    with sock:
        sock.connect(impatient.socket_path)
        assert MessageStream(sock).read() is None  # closed, without a word, after 1 s
    # The subscription is older than that idle connection, and still delivers.
    with impatient.client("holder") as holder:
        lease = holder.acquire()
        watcher.wait("lease_changed", holder=lease.holder)
    assert "reason=idle" in impatient.log()
