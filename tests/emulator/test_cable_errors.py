"""USB errors a dongle reports over the virtual cable reach the host as those errors: only a lost
cable connection looks like an unplugged dongle."""

from __future__ import annotations

import errno
from collections.abc import Iterator

import pytest
import usb.core

from dongle.usblink import find_dongles
from tests.fixtures.dongles import CableProcess, running_cable


@pytest.fixture
def cable() -> Iterator[CableProcess]:
    with running_cable(1) as running:
        yield running


def test_a_stalled_control_request_is_a_pipe_error_not_an_unplug(cable: CableProcess) -> None:
    (device,) = find_dongles(cable.backend())
    with pytest.raises(usb.core.USBError) as caught:
        device.ctrl_transfer(0x40, 0x55, 0, 0, b"")  # a vendor request the dongle STALLs
    assert caught.value.errno == errno.EPIPE
    assert device.serial_number == cable.serials[0]  # and the dongle is still there


def test_a_lost_cable_connection_is_an_unplug(cable: CableProcess) -> None:
    (device,) = find_dongles(cable.backend())
    assert device.serial_number == cable.serials[0]
    cable.process.terminate()
    cable.process.wait(10)
    with pytest.raises(usb.core.USBError) as caught:
        device.ctrl_transfer(0x80, 0x00, 0, 0, 2)  # GET_STATUS
    assert caught.value.errno == errno.ENODEV
