"""The virtual cable: dongles served by a separate ``tvpay-emulator dongle`` process."""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from dongle.usblink import DongleRemoved, find_dongles, load_backend
from emulator.usb.cable import CableControl, CableError, hotplug
from emulator.usb.wire import (
    XFER_WRITE,
    Channel,
    connect,
    encode_request,
    parse_address,
)
from protocol.messages import Command
from tests.fixtures.dongles import (
    ROOT,
    CableProcess,
    open_link,
    payment_fields,
    pin_token,
    provision,
    running_cable,
    sign_payment,
)


@pytest.fixture(scope="module")
def cable() -> Iterator[CableProcess]:
    with running_cable(2, seed=5) as running:
        yield running


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_backend_from_configuration_finds_both_dongles(cable: CableProcess) -> None:
    devices = find_dongles(cable.backend())
    assert sorted(d.serial_number for d in devices) == sorted(cable.serials)


def test_commands_run_over_the_cable(cable: CableProcess) -> None:
    with open_link(cable.backend(), cable.serials[0]) as link:
        provision(link)
        result = sign_payment(link, pin_token(link), payment_fields())
    assert result["counter"] == 1


def test_unplug_over_the_cable_is_dongle_removed(cable: CableProcess) -> None:
    serial = cable.serials[1]
    with cable.control() as control, open_link(cable.backend(), serial) as link:
        control.unplug(serial)
        with pytest.raises(DongleRemoved):
            link.call(Command.PING)
        control.plug(serial)
    with open_link(cable.backend(), serial) as again:
        assert again.call(Command.PING, {"data": b"back"})["data"] == b"back"


def test_hotplug_reports_plugged_dongles_then_changes(cable: CableProcess) -> None:
    events: list[tuple[str, Mapping[str, str]]] = []
    removed = threading.Event()

    def on_event(action: str, props: Mapping[str, str]) -> None:
        events.append((action, props))
        if action == "remove":
            removed.set()

    stop = hotplug(cable.address, on_event)
    try:
        with cable.control() as control:
            serial = cable.serials[1]
            control.unplug(serial)
            assert removed.wait(10)
            control.plug(serial)
    finally:
        stop()
    initial = {p["ID_SERIAL_SHORT"] for a, p in events[:2]}
    assert initial == set(cable.serials)
    remove = next(p for a, p in events if a == "remove")
    assert (remove["PRODUCT"], remove["SUBSYSTEM"]) == ("1209/1/100", "usb")


def test_cli_arms_a_fault_that_list_shows(cable: CableProcess) -> None:
    serial = cable.serials[0]
    done = _cli("cable", "--address", cable.address, "fault", serial, "delay", "seconds=0.5")
    assert done.returncode == 0, done.stderr
    listing = _cli("cable", "--address", cable.address, "list")
    assert '"kind": "delay"' in listing.stdout
    assert _cli("cable", "--address", cable.address, "clear-faults", serial).returncode == 0


def test_cli_refuses_an_unknown_serial(cable: CableProcess) -> None:
    done = _cli("cable", "--address", cable.address, "unplug", "TVP-NOPE")
    assert done.returncode == 1 and "no dongle TVP-NOPE" in done.stderr


def test_add_dongle_plugs_a_new_one(cable: CableProcess) -> None:
    with cable.control() as control:
        (serial,) = control.add_dongle()
    assert serial in {d.serial_number for d in find_dongles(cable.backend())}


def test_killed_dongle_process_looks_unplugged_and_restarts_with_its_counter() -> None:
    with running_cable(1) as first:
        with open_link(first.backend()) as link:
            provision(link)
            counter = sign_payment(link, pin_token(link), payment_fields())["counter"]
            first.process.kill()
            first.process.wait()
            with pytest.raises(DongleRemoved):
                link.call(Command.PING)
        with (
            running_cable(0, state_dir=first.state_dir) as second,
            open_link(second.backend()) as link,
        ):
            assert link.call(Command.GET_INFO)["counter"] == counter


def test_unreachable_cable_shows_no_dongles() -> None:
    assert find_dongles(load_backend("emulator.usb.cable:backend?127.0.0.1:9")) == []


def test_control_client_explains_an_unreachable_cable() -> None:
    with pytest.raises(CableError, match="is 'tvpay-emulator dongle --listen' running"):
        CableControl("127.0.0.1:9").list()


def test_factory_prints_the_manufacturer_ca(tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = _cli("factory", "--out", str(tmp_path), "--count", "2", "--seed", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("dongle TVP") for line in lines) == 2
    assert lines[-1] == f"manufacturer_ca {tmp_path / 'manufacturer-ca.pem'}"
    assert (tmp_path / "manufacturer-ca.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "spec", ["nocolon", "emulator.usb.cable:nothing?x", "no.such.module:backend"]
)
def test_load_backend_explains_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="backend"):
        load_backend(spec)


def test_empty_backend_spec_means_libusb() -> None:
    assert load_backend("") is None and load_backend(None) is None


def _next_events(events: queue.Queue, count: int, timeout: float = 20.0) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    got = []
    while len(got) < count:
        got.append(events.get(timeout=max(0.0, deadline - time.monotonic())))
    return got


def _serve_on(
    address: str, state_dir: Path, *flags: str, stderr: int = subprocess.DEVNULL
) -> tuple[subprocess.Popen[str], str]:
    """A cable process on a given address (port 0: a free one); returns once it listens, with
    the address it listens on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "dongle", "--listen", address, *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={
            **os.environ,
            "TVPAY_EMULATOR_DONGLE_STATE_DIR": str(state_dir),
            "TVPAY_EMULATOR_CONFIG": str(state_dir / "absent.toml"),
        },
    )
    assert proc.stdout is not None
    bound = dict(part.split("=", 1) for part in proc.stdout.readline().split())["address"]
    assert address.endswith(":0") or bound == address
    return proc, bound


def test_hotplug_reports_removes_when_the_cable_dies_and_adds_when_it_returns() -> None:
    events: queue.Queue[tuple[str, dict]] = queue.Queue()  # type: ignore[type-arg]
    with running_cable(2, seed=8) as first:
        stop = hotplug(first.address, lambda action, props: events.put((action, dict(props))))
        try:
            added = _next_events(events, 2)
            first.process.kill()
            first.process.wait()
            removed = _next_events(events, 2)
            second, _ = _serve_on(first.address, first.state_dir)
            try:
                again = _next_events(events, 2)
            finally:
                second.terminate()
                second.wait(15)
        finally:
            stop()
    assert {p["ID_SERIAL_SHORT"] for a, p in added if a == "add"} == set(first.serials)
    assert [a for a, _ in removed] == ["remove", "remove"]
    assert {p["DEVNAME"] for _, p in removed} == {p["DEVNAME"] for _, p in added}
    assert all("ID_SERIAL_SHORT" not in p and p["PRODUCT"] == "1209/1/100" for _, p in removed)
    assert [a for a, _ in again] == ["add", "add"]
    assert {p["ID_SERIAL_SHORT"] for _, p in again} == set(first.serials)


def test_hotplug_backs_off_while_the_cable_is_gone_and_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tvpay.emulator.cable")
    events: queue.Queue[tuple[str, dict]] = queue.Queue()  # type: ignore[type-arg]
    with running_cable(1) as cable:
        stop = hotplug(cable.address, lambda action, props: events.put((action, dict(props))))
        _next_events(events, 1)
        cable.process.kill()
        cable.process.wait()
        assert _next_events(events, 1)[0][0] == "remove"
        deadline = time.monotonic() + 20
        while not any("retry_in=0.40" in r.message for r in caplog.records):
            assert time.monotonic() < deadline, "the reconnection backoff did not grow"
            time.sleep(0.05)
        started = time.monotonic()
        stop()
        assert time.monotonic() - started < 3
        assert not any(t.name == "cable-hotplug" for t in threading.enumerate())
    retries = [r.message for r in caplog.records if "hotplug_reconnect_failed" in r.message]
    assert retries[:3] == [
        f"event=hotplug_reconnect_failed retry_in={d}" for d in ("0.10", "0.20", "0.40")
    ]
    assert sum("hotplug_lost" in r.message for r in caplog.records) == 1
    assert events.empty()


def test_transfer_before_open_is_refused_and_the_connection_survives(
    cable: CableProcess,
) -> None:
    sock = connect(parse_address(cable.address))
    channel = Channel(sock)
    try:
        channel.send_framed(encode_request(XFER_WRITE, 1, 100, 0, b"x"))
        assert "open a device" in channel.receive_map()["error"]
        channel.send({"op": "devices"})
        assert len(channel.receive_map()["ok"]) >= 1
    finally:
        channel.close()


def test_malformed_transfer_record_ends_only_that_connection(cable: CableProcess) -> None:
    sock = connect(parse_address(cable.address))
    try:
        sock.sendall(b"\x00\x00\x00\x02\x01\x01")  # a write record cut short
        assert sock.recv(10) == b""  # the server hung up
    finally:
        sock.close()
    with open_link(cable.backend(), cable.serials[0]) as link:
        assert link.call(Command.PING, {"data": b"ok"})["data"] == b"ok"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cable_process_stops_on_a_signal_with_one_line(signum: int, tmp_path: Path) -> None:
    proc, address = _serve_on("127.0.0.1:0", tmp_path, "--count", "1", stderr=subprocess.PIPE)
    try:
        with CableControl(address) as control:  # a connection still open when the signal comes
            assert len(control.list()) == 1
            proc.send_signal(signum)
            _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    stops = [line for line in stderr.splitlines() if "event=stopped" in line]
    assert stops == [stops[0]] and f"signal={signal.Signals(signum).name}" in stops[0]
