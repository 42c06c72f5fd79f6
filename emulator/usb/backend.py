"""A pyusb backend (``usb.backend.IBackend``) presenting virtual dongles to plain ``usb.core``.

The same backend serves dongles in this process (``VirtualBus``) and dongles behind the virtual
cable: both are a ``DeviceSource`` that lists devices and opens a ``Port`` on one of them.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Protocol

from usb.backend import IBackend

from emulator.usb.bus import BusError, VirtualBus
from emulator.usb.descriptors import (
    CONFIGURATION,
    ENDPOINTS,
    INTERFACE,
    DeviceDescriptor,
)
from emulator.usb.device import VirtualDongle
from emulator.usb.errors import no_device


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    serial: str
    bus: int
    address: int
    port_number: int


class Port(Protocol):
    """An open handle on one device, bound to the bus address it was opened at."""

    def control(
        self, request_type: int, request: int, value: int, index: int, data: bytes | int
    ) -> bytes | int: ...
    def write(self, endpoint: int, data: bytes, timeout_ms: int) -> int: ...
    def read(self, endpoint: int, size: int, timeout_ms: int) -> bytes: ...
    def set_configuration(self, value: int) -> None: ...
    def clear_halt(self, endpoint: int) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


class DeviceSource(Protocol):
    def devices(self) -> list[DeviceInfo]: ...
    def open(self, info: DeviceInfo) -> Port: ...


@dataclass(frozen=True, slots=True)
class _Device:
    """What ``enumerate_devices`` yields: pyusb hands it back to every other method."""

    info: DeviceInfo
    descriptor: DeviceDescriptor


class VirtualBackend(IBackend):
    def __init__(self, source: DeviceSource) -> None:
        self.source = source

    def enumerate_devices(self):  # type: ignore[no-untyped-def]
        for info in self.source.devices():
            descriptor = DeviceDescriptor(
                bus=info.bus, address=info.address, port_number=info.port_number
            )
            yield _Device(info, descriptor)

    def get_device_descriptor(self, dev: _Device) -> DeviceDescriptor:
        return dev.descriptor

    def get_configuration_descriptor(self, dev: _Device, config: int):  # type: ignore[no-untyped-def]
        if config != 0:
            raise IndexError("the dongle has one configuration")
        return CONFIGURATION

    def get_interface_descriptor(self, dev: _Device, intf: int, alt: int, config: int):  # type: ignore[no-untyped-def]
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError("the dongle has one interface without alternate settings")
        return INTERFACE

    def get_endpoint_descriptor(self, dev: _Device, ep: int, intf: int, alt: int, config: int):  # type: ignore[no-untyped-def]
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(ENDPOINTS):
            raise IndexError("no such endpoint")
        return ENDPOINTS[ep]

    def open_device(self, dev: _Device) -> Port:
        return self.source.open(dev.info)

    def close_device(self, dev_handle: Port) -> None:
        dev_handle.close()

    def set_configuration(self, dev_handle: Port, config_value: int) -> None:
        dev_handle.set_configuration(config_value)

    def get_configuration(self, dev_handle: Port) -> int:
        data = dev_handle.control(0x80, 0x08, 0, 0, 1)
        assert isinstance(data, bytes)
        return data[0]

    def set_interface_altsetting(self, dev_handle: Port, intf: int, altsetting: int) -> None:
        if (intf, altsetting) != (0, 0):
            raise IndexError("the dongle has no alternate settings")

    def claim_interface(self, dev_handle: Port, intf: int) -> None:
        pass  # nothing else competes for the virtual device's interface

    def release_interface(self, dev_handle: Port, intf: int) -> None:
        pass

    def bulk_write(self, dev_handle: Port, ep: int, intf: int, data: array, timeout: int) -> int:
        return dev_handle.write(ep, data.tobytes(), timeout)

    def bulk_read(self, dev_handle: Port, ep: int, intf: int, buff: array, timeout: int) -> int:
        data = dev_handle.read(ep, len(buff), timeout)
        buff[: len(data)] = array("B", data)
        return len(data)

    def ctrl_transfer(  # type: ignore[no-untyped-def]
        self, dev_handle: Port, bmRequestType, bRequest, wValue, wIndex, data, timeout
    ) -> int:
        if bmRequestType & 0x80:
            result = dev_handle.control(bmRequestType, bRequest, wValue, wIndex, len(data))
            assert isinstance(result, bytes)
            data[: len(result)] = array("B", result)
            return len(result)
        written = dev_handle.control(bmRequestType, bRequest, wValue, wIndex, data.tobytes())
        assert isinstance(written, int)
        return written

    def clear_halt(self, dev_handle: Port, ep: int) -> None:
        dev_handle.clear_halt(ep)

    def reset_device(self, dev_handle: Port) -> None:
        dev_handle.reset()

    def is_kernel_driver_active(self, dev_handle: Port, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: Port, intf: int) -> None:
        pass

    def attach_kernel_driver(self, dev_handle: Port, intf: int) -> None:
        pass


class LocalPort:
    """A handle on a dongle in this process."""

    def __init__(self, dongle: VirtualDongle, address: int) -> None:
        self._dongle = dongle
        self._address = address

    def control(
        self, request_type: int, request: int, value: int, index: int, data: bytes | int
    ) -> bytes | int:
        return self._dongle.control(self._address, request_type, request, value, index, data)

    def write(self, endpoint: int, data: bytes, timeout_ms: int) -> int:
        return self._dongle.write(self._address, endpoint, data, timeout_ms)

    def read(self, endpoint: int, size: int, timeout_ms: int) -> bytes:
        return self._dongle.read(self._address, endpoint, size, timeout_ms)

    def poll(self, endpoint: int, size: int) -> bytes | None:
        return self._dongle.poll(self._address, endpoint, size)

    def set_configuration(self, value: int) -> None:
        self._dongle.set_configuration(self._address, value)

    def clear_halt(self, endpoint: int) -> None:
        self._dongle.clear_halt(self._address, endpoint)

    def reset(self) -> None:
        self._dongle.reset(self._address)

    def close(self) -> None:
        pass


class LocalSource:
    """The dongles plugged into a ``VirtualBus`` of this process."""

    def __init__(self, bus: VirtualBus) -> None:
        self.bus = bus

    def devices(self) -> list[DeviceInfo]:
        return [info_of(d) for d in self.bus.plugged()]

    def open(self, info: DeviceInfo) -> Port:
        return LocalPort(self.checked(info), info.address)

    def checked(self, info: DeviceInfo) -> VirtualDongle:
        """The dongle ``info`` names, if it is still plugged at that address."""
        try:
            dongle = self.bus.get(info.serial)
        except BusError:
            raise no_device() from None
        if not dongle.plugged or dongle.descriptor.address != info.address:
            raise no_device()
        return dongle


def info_of(dongle: VirtualDongle) -> DeviceInfo:
    desc = dongle.descriptor
    return DeviceInfo(dongle.serial, desc.bus, desc.address, desc.port_number)


def local_backend(bus: VirtualBus) -> VirtualBackend:
    """A pyusb backend for the dongles of ``bus`` in this process."""
    return VirtualBackend(LocalSource(bus))
