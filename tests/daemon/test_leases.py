"""Leases: busy answers that name the holder, priority, waiting, stalls, connection loss."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from dongle.client import DaemonClient
from dongle.errors import DongleBusy, LeaseLost
from dongle.model import Priority
from tests.daemon.conftest import DaemonProcess, EventLog, start_daemon
from tests.fixtures.dongles import CableProcess


def test_busy_answer_names_the_holder_instead_of_not_found(daemon: DaemonProcess) -> None:
    with daemon.client("tvapp") as holder, daemon.client("staff") as other:
        lease = holder.acquire()
        with pytest.raises(DongleBusy) as caught:
            other.key_agreement(bytes(16))
        assert caught.value.holder is not None
        assert caught.value.holder.client == "tvapp"
        assert caught.value.holder.pid == os.getpid()
        assert f"held by tvapp (pid {os.getpid()}) since" in str(caught.value)
        assert other.devices()[0].held_by == lease.holder


def test_ping_and_info_run_while_another_client_holds_the_dongle(daemon: DaemonProcess) -> None:
    with daemon.client("tvapp") as holder, daemon.client("doctor") as other:
        holder.acquire()
        assert other.ping(b"still alive") == b"still alive"
        assert other.info().held_by is not None


def test_lease_ends_when_its_connection_closes(daemon: DaemonProcess, events: EventLog) -> None:
    holder = daemon.client("tvapp")
    serial = holder.acquire().serial
    events.wait("lease_changed", serial, holder=holder.devices()[0].held_by)
    holder.close()
    events.wait("lease_changed", serial, holder=None)
    with daemon.client("next") as other:
        assert other.acquire().holder.client == "next"


def test_acquire_waits_for_the_release(daemon: DaemonProcess, events: EventLog) -> None:
    with daemon.client("first") as first, daemon.client("second") as second:
        lease = first.acquire()
        granted: list[str] = []
        waiter = threading.Thread(target=lambda: granted.append(second.acquire(wait=10).serial))
        waiter.start()
        events.wait("lease_changed", holder=lease.holder)  # the first grant
        lease.release()
        waiter.join(15)
        assert granted == [lease.serial]
        assert second.devices()[0].held_by.client == "second"


def test_acquire_gives_up_after_its_wait_with_a_busy_answer(daemon: DaemonProcess) -> None:
    with daemon.client("first") as first, daemon.client("second") as second:
        first.acquire()
        with pytest.raises(DongleBusy, match="held by first"):
            second.acquire(wait=0.2)


def test_high_priority_takes_the_dongle_from_an_idle_normal_holder(daemon: DaemonProcess) -> None:
    with (
        daemon.client("diagnostics") as normal,
        daemon.client("tvapp", priority=Priority.HIGH) as payment,
    ):
        normal.acquire()
        assert payment.acquire().holder.client == "tvapp"
        with pytest.raises(LeaseLost, match="given to tvapp"):
            normal.key_agreement(bytes(16))


def test_normal_priority_cannot_take_the_dongle_from_a_high_holder(daemon: DaemonProcess) -> None:
    with (
        daemon.client("tvapp", priority=Priority.HIGH) as payment,
        daemon.client("staff") as normal,
    ):
        payment.acquire()
        with pytest.raises(DongleBusy, match="held by tvapp"):
            normal.acquire()
        assert len(payment.key_agreement(bytes(16)).key) == 65


def test_waiters_are_served_by_priority(daemon: DaemonProcess, events: EventLog) -> None:
    clients = {
        "holder": daemon.client("holder", priority=Priority.HIGH),
        "normal": daemon.client("normal"),
        "high": daemon.client("high", priority=Priority.HIGH),
    }
    try:
        lease = clients["holder"].acquire()
        order: list[str] = []
        lock = threading.Lock()

        def wait_for(name: str) -> None:
            got = clients[name].acquire(wait=20)
            with lock:
                order.append(name)
            got.release()

        normal = threading.Thread(target=wait_for, args=("normal",))
        normal.start()
        _wait_until_waiting(clients["holder"], 1)  # the normal client queues first
        high = threading.Thread(target=wait_for, args=("high",))
        high.start()
        _wait_until_waiting(clients["holder"], 2)
        lease.release()
        normal.join(30)
        high.join(30)
        assert order == ["high", "normal"]
    finally:
        for client in clients.values():
            client.close()


def _wait_until_waiting(client: DaemonClient, count: int, timeout: float = 10.0) -> None:
    """Poll the daemon (with a deadline) until ``count`` clients are queued for the dongle."""
    deadline = time.monotonic() + timeout
    while client.devices()[0].waiting < count:
        assert time.monotonic() < deadline, f"{count} waiters never queued"
        threading.Event().wait(0.005)


def test_a_stalled_holder_loses_its_lease(workdir: Path, cable: CableProcess) -> None:
    daemon = start_daemon(workdir, cable, "--lease-idle-timeout", "0.3")
    try:
        with daemon.client("stalled") as stalled, daemon.client("waiting") as waiting:
            stalled.acquire()
            assert waiting.acquire(wait=10).holder.client == "waiting"
            with pytest.raises(LeaseLost, match="idle for"):
                stalled.key_agreement(bytes(16))
    finally:
        daemon.stop()


def test_a_lease_holder_can_use_the_dongle_from_several_threads(daemon: DaemonProcess) -> None:
    with daemon.client("tvapp") as client, client.acquire():
        results: list[bytes] = []

        def work(tag: bytes) -> None:
            for _ in range(50):
                results.append(client.ping(tag))

        threads = [threading.Thread(target=work, args=(bytes([i]),)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(set(results)) == [bytes([i]) for i in range(4)]
        assert len(results) == 200


def test_clients_need_a_name_the_busy_answer_can_show(daemon: DaemonProcess) -> None:
    with pytest.raises(Exception, match="printable name"):
        DaemonClient(daemon.socket_path, client_name="bad\nname").devices()
