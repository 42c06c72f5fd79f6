"""The virtual USB device as pyusb sees it: descriptors, strings, packets, halts, reset, unplug."""

from __future__ import annotations

import errno

import pytest
import usb.core
import usb.util

from dongle.usblink import DongleLink, DongleRemoved, find_dongles
from emulator.usb.bus import VirtualBus
from emulator.usb.faults import Fault, FaultKind
from protocol.messages import Command, Request, encode_message
from protocol.usb import EP_IN, EP_OUT
from tests.fixtures.dongles import in_process_bus


def test_device_descriptors_match_the_protocol(bus_and_backend) -> None:  # type: ignore[no-untyped-def]
    (device,) = find_dongles(bus_and_backend[1])
    assert (device.idVendor, device.idProduct, device.bcdDevice) == (0x1209, 0x0001, 0x0100)
    assert (device.manufacturer, device.product) == ("TVPay", "TVPay Payment Dongle")
    assert device.serial_number.startswith("TVP")
    config = device[0]
    assert (config.bConfigurationValue, config.bMaxPower, config.bmAttributes) == (1, 50, 0x80)
    intf = config[(0, 0)]
    assert (intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (
        0xFF,
        0x54,
        1,
    )
    endpoints = {ep.bEndpointAddress: ep for ep in intf}
    assert set(endpoints) == {EP_OUT, EP_IN}
    assert all(
        ep.wMaxPacketSize == 64 and usb.util.endpoint_type(ep.bmAttributes) == 2 for ep in intf
    )


def test_several_dongles_have_distinct_serials_and_addresses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, backend = in_process_bus(tmp_path, 3)
    devices = find_dongles(backend)
    assert len({d.serial_number for d in devices}) == 3
    assert len({(d.bus, d.address) for d in devices}) == 3


def test_frame_of_exactly_64_bytes_needs_the_zlp(link: DongleLink) -> None:
    frame = next(
        f
        for n in range(80)
        if len(f := encode_message(Request(Command.PING, 5, {"data": bytes(n)}), 11)) % 64 == 0
    )
    link.device.write(EP_OUT, frame)
    with pytest.raises(usb.core.USBTimeoutError):
        link.device.read(EP_IN, 8256, timeout=50)  # the transfer has not ended yet
    link.device.write(EP_OUT, b"")
    assert len(link.device.read(EP_IN, 8256, timeout=1000)) > 0


def test_small_reads_get_one_packet_at_a_time(link: DongleLink) -> None:
    link.device.write(EP_OUT, encode_message(Request(Command.PING, 5, {"data": bytes(100)}), 12))
    first = link.device.read(EP_IN, 64, timeout=1000)
    rest = link.device.read(EP_IN, 8256, timeout=1000)
    assert len(first) == 64 and 0 < len(rest) < 64


def test_read_with_nothing_to_send_times_out_like_libusb(link: DongleLink) -> None:
    with pytest.raises(usb.core.USBTimeoutError) as caught:
        link.device.read(EP_IN, 8256, timeout=20)
    assert caught.value.errno == errno.ETIMEDOUT


def test_unplugged_dongle_raises_no_such_device(link: DongleLink, bus: VirtualBus) -> None:
    bus.unplug(link.serial)
    with pytest.raises(usb.core.USBError) as caught:
        link.device.write(EP_OUT, b"x")
    assert caught.value.errno == errno.ENODEV


def test_link_reports_an_unplug_as_dongle_removed(link: DongleLink, bus: VirtualBus) -> None:
    bus.unplug(link.serial)
    with pytest.raises(DongleRemoved, match="plug it back in"):
        link.call(Command.PING)


def test_replugged_dongle_gets_a_new_address_and_old_handles_stay_dead(
    link: DongleLink, bus: VirtualBus, bus_and_backend
) -> None:  # type: ignore[no-untyped-def]
    old = link.device.address
    bus.unplug(link.serial)
    bus.plug(link.serial)
    (device,) = find_dongles(bus_and_backend[1])
    assert device.address != old
    with pytest.raises(DongleRemoved):
        link.call(Command.PING)


def test_clear_halt_after_a_stall(link: DongleLink, bus: VirtualBus) -> None:
    bus.get(link.serial).add_fault(Fault(FaultKind.STALL, "out"))
    with pytest.raises(usb.core.USBError) as caught:
        link.device.write(EP_OUT, b"x")
    assert caught.value.errno == errno.EPIPE
    link.device.clear_halt(EP_OUT)
    assert link.call(Command.PING, {"data": b"ok"})["data"] == b"ok"


def test_reset_forgets_the_link_state_but_not_the_dongle(link: DongleLink) -> None:
    link.device.write(EP_OUT, encode_message(Request(Command.PING, 5, {}), 12))
    link.device.reset()
    with pytest.raises(usb.core.USBTimeoutError):
        link.device.read(EP_IN, 8256, timeout=20)  # the queued answer went with the reset
    assert link.call(Command.GET_INFO)["state"] == "factory"


def test_unplug_and_plug_emit_udev_like_events(bus: VirtualBus) -> None:
    events: list[tuple[str, dict]] = []
    stop = bus.subscribe(lambda action, props: events.append((action, dict(props))))
    serial = bus.dongles()[0].serial
    bus.unplug(serial)
    bus.plug(serial)
    stop()
    assert [a for a, _ in events] == ["add", "remove", "add"]
    add = events[0][1]
    assert (add["SUBSYSTEM"], add["DEVTYPE"], add["PRODUCT"]) == ("usb", "usb_device", "1209/1/100")
    assert add["ID_SERIAL_SHORT"] == serial and add["BUSNUM"] == "001"
    assert "ID_SERIAL_SHORT" not in events[1][1]
