"""USB identity of the payment dongle and the mapping of frames onto 64-byte bulk packets."""

from __future__ import annotations

from collections.abc import Iterator

# pid.codes test VID/PID; production units are reprogrammed with the operator's own pair.
DEFAULT_VID = 0x1209
DEFAULT_PID = 0x0001
DEVICE_RELEASE = 0x0100  # bcdDevice 1.00

INTERFACE_CLASS = 0xFF  # vendor specific
INTERFACE_SUBCLASS = 0x54  # 'T'
INTERFACE_PROTOCOL = 0x01
EP_OUT = 0x01
EP_IN = 0x81
PACKET_SIZE = 64  # full-speed bulk max packet size

MANUFACTURER = "TVPay"
PRODUCT = "TVPay Payment Dongle"


def packets(frame: bytes, packet_size: int = PACKET_SIZE) -> Iterator[bytes]:
    """Split one frame into the bulk packets that carry it.

    A transfer ends at the first short packet. When the frame is an exact multiple of the
    packet size, a zero-length packet ends it, so the receiver never waits for more.
    """
    length = len(frame)
    if length < packet_size:  # most frames: one short packet (an empty frame is one empty packet)
        return iter((bytes(frame),))
    data = bytes(frame)  # slices of bytes are bytes, whatever buffer the frame came in
    out = [data[start : start + packet_size] for start in range(0, length, packet_size)]
    if length % packet_size == 0:
        out.append(b"")
    return iter(out)


def product_property(
    vid: int = DEFAULT_VID, pid: int = DEFAULT_PID, bcd: int = DEVICE_RELEASE
) -> str:
    """The udev ``PRODUCT`` value of a device ("vid/pid/bcd" in lowercase hex, no padding)."""
    return f"{vid:x}/{pid:x}/{bcd:x}"


def matches_product(product: str, vid: int = DEFAULT_VID, pid: int = DEFAULT_PID) -> bool:
    """True when a udev ``PRODUCT`` value names our VID/PID, whatever the release number."""
    parts = product.split("/")
    if len(parts) != 3:
        return False
    try:
        return int(parts[0], 16) == vid and int(parts[1], 16) == pid
    except ValueError:
        return False
