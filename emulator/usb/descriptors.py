"""USB descriptors of the payment dongle (docs/protocol.md §1), as records pyusb reads and as the
bytes a GET_DESCRIPTOR control request returns. Field names are the USB specification's, which pyusb reads."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from protocol.usb import (
    DEFAULT_PID,
    DEFAULT_VID,
    DEVICE_RELEASE,
    EP_IN,
    EP_OUT,
    INTERFACE_CLASS,
    INTERFACE_PROTOCOL,
    INTERFACE_SUBCLASS,
    MANUFACTURER,
    PACKET_SIZE,
    PRODUCT,
)

DESC_DEVICE, DESC_CONFIG, DESC_STRING, DESC_INTERFACE, DESC_ENDPOINT = 1, 2, 3, 4, 5
LANGID_EN_US = 0x0409
SPEED_FULL = 2  # libusb's LIBUSB_SPEED_FULL
BULK = 0x02
STRING_MANUFACTURER, STRING_PRODUCT, STRING_SERIAL = 1, 2, 3


@dataclass(slots=True)
class DeviceDescriptor:
    bus: int
    address: int
    port_number: int
    iSerialNumber: int = STRING_SERIAL
    bLength: int = 18
    bDescriptorType: int = DESC_DEVICE
    bcdUSB: int = 0x0200
    bDeviceClass: int = 0
    bDeviceSubClass: int = 0
    bDeviceProtocol: int = 0
    bMaxPacketSize0: int = 64
    idVendor: int = DEFAULT_VID
    idProduct: int = DEFAULT_PID
    bcdDevice: int = DEVICE_RELEASE
    iManufacturer: int = STRING_MANUFACTURER
    iProduct: int = STRING_PRODUCT
    bNumConfigurations: int = 1
    speed: int = SPEED_FULL
    extra_descriptors: bytes = b""

    @property
    def port_numbers(self) -> tuple[int, ...]:
        return (self.port_number,)

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<BBHBBBBHHHBBBB",
            self.bLength,
            self.bDescriptorType,
            self.bcdUSB,
            self.bDeviceClass,
            self.bDeviceSubClass,
            self.bDeviceProtocol,
            self.bMaxPacketSize0,
            self.idVendor,
            self.idProduct,
            self.bcdDevice,
            self.iManufacturer,
            self.iProduct,
            self.iSerialNumber,
            self.bNumConfigurations,
        )


@dataclass(frozen=True, slots=True)
class EndpointDescriptor:
    bEndpointAddress: int
    bLength: int = 7
    bDescriptorType: int = DESC_ENDPOINT
    bmAttributes: int = BULK
    wMaxPacketSize: int = PACKET_SIZE
    bInterval: int = 0
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: bytes = b""

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<BBBBHB",
            self.bLength,
            self.bDescriptorType,
            self.bEndpointAddress,
            self.bmAttributes,
            self.wMaxPacketSize,
            self.bInterval,
        )


@dataclass(frozen=True, slots=True)
class InterfaceDescriptor:
    bLength: int = 9
    bDescriptorType: int = DESC_INTERFACE
    bInterfaceNumber: int = 0
    bAlternateSetting: int = 0
    bNumEndpoints: int = 2
    bInterfaceClass: int = INTERFACE_CLASS
    bInterfaceSubClass: int = INTERFACE_SUBCLASS
    bInterfaceProtocol: int = INTERFACE_PROTOCOL
    iInterface: int = 0
    extra_descriptors: bytes = b""

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<9B",
            self.bLength,
            self.bDescriptorType,
            self.bInterfaceNumber,
            self.bAlternateSetting,
            self.bNumEndpoints,
            self.bInterfaceClass,
            self.bInterfaceSubClass,
            self.bInterfaceProtocol,
            self.iInterface,
        )


ENDPOINTS = (EndpointDescriptor(EP_OUT), EndpointDescriptor(EP_IN))
INTERFACE = InterfaceDescriptor()


@dataclass(frozen=True, slots=True)
class ConfigurationDescriptor:
    bLength: int = 9
    bDescriptorType: int = DESC_CONFIG
    wTotalLength: int = 9 + 9 + 7 * len(ENDPOINTS)
    bNumInterfaces: int = 1
    bConfigurationValue: int = 1
    iConfiguration: int = 0
    bmAttributes: int = 0x80  # bus powered
    bMaxPower: int = 50  # in 2 mA units: 100 mA
    extra_descriptors: bytes = b""

    def to_bytes(self) -> bytes:
        head = struct.pack(
            "<BBHBBBBB",
            self.bLength,
            self.bDescriptorType,
            self.wTotalLength,
            self.bNumInterfaces,
            self.bConfigurationValue,
            self.iConfiguration,
            self.bmAttributes,
            self.bMaxPower,
        )
        return head + INTERFACE.to_bytes() + b"".join(ep.to_bytes() for ep in ENDPOINTS)


CONFIGURATION = ConfigurationDescriptor()


def string_descriptor(index: int, serial: str) -> bytes | None:
    """String descriptor ``index`` (0 = the LANGID table), or None when there is no such string."""
    if index == 0:
        return struct.pack("<BBH", 4, DESC_STRING, LANGID_EN_US)
    text = {STRING_MANUFACTURER: MANUFACTURER, STRING_PRODUCT: PRODUCT, STRING_SERIAL: serial}.get(
        index
    )
    if text is None:
        return None
    encoded = text.encode("utf-16-le")
    return struct.pack("<BB", 2 + len(encoded), DESC_STRING) + encoded
