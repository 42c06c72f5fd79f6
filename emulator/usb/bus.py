"""A virtual USB bus (a hub, for the staff case): dongles with distinct addresses, plug and unplug
at run time, and udev-like events for whoever watches."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from emulator.firmware.dongle import Clock
from emulator.firmware.factory import manufacture_batch
from emulator.firmware.store import DongleStore, stored_serials
from emulator.usb.descriptors import DeviceDescriptor
from emulator.usb.device import VirtualDongle
from protocol.messages import Command
from protocol.usb import DEFAULT_PID, DEFAULT_VID, DEVICE_RELEASE, product_property

Listener = Callable[[str, Mapping[str, str]], None]


class BusError(LookupError):
    """The bus has no dongle with that serial."""


def udev_properties(action: str, dongle: VirtualDongle) -> dict[str, str]:
    """What udev would report for this dongle (``ID_SERIAL_SHORT`` only on add, as on remove
    udev no longer reads the device)."""
    desc = dongle.descriptor
    props = {
        "ACTION": action,
        "SUBSYSTEM": "usb",
        "DEVTYPE": "usb_device",
        "PRODUCT": product_property(DEFAULT_VID, DEFAULT_PID, DEVICE_RELEASE),
        "BUSNUM": f"{desc.bus:03d}",
        "DEVNUM": f"{desc.address:03d}",
        "DEVNAME": f"/dev/bus/usb/{desc.bus:03d}/{desc.address:03d}",
        "DEVPATH": f"/devices/virtual/tvpay/usb{desc.bus}/{desc.bus}-{desc.port_number}",
    }
    if action == "add":
        props["ID_SERIAL_SHORT"] = dongle.serial
    return props


class VirtualBus:
    def __init__(
        self,
        state_dir: Path,
        *,
        busnum: int = 1,
        clock: Clock = time.monotonic,
        timing: Mapping[Command, float] | None = None,
        seed: int | str = 0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.busnum = busnum
        self._clock = clock
        self._timing = timing
        self._seed = seed
        self._lock = threading.RLock()
        self._dongles: dict[str, VirtualDongle] = {}
        self._listeners: list[Listener] = []
        self._addresses = itertools.cycle(range(2, 128))  # address 1 is the root hub

    def load(self, *, plugged: bool = True) -> list[str]:
        """Attach every dongle stored in the state directory that is not on the bus yet."""
        serials = [s for s in stored_serials(self.state_dir) if s not in self._dongles]
        for serial in serials:
            self.attach(serial, plugged=plugged)
        return serials

    def manufacture(
        self, count: int, seed: int | None = None, *, plugged: bool = True
    ) -> list[str]:
        """Create ``count`` factory-fresh dongles in the state directory and attach them."""
        serials = manufacture_batch(self.state_dir, count, seed)
        for serial in serials:
            self.attach(serial, plugged=plugged)
        return serials

    def attach(self, serial: str, *, plugged: bool = True) -> VirtualDongle:
        with self._lock:
            port = len(self._dongles) + 1
            dongle = VirtualDongle(
                DongleStore(self.state_dir, serial),
                DeviceDescriptor(bus=self.busnum, address=0, port_number=port),
                clock=self._clock,
                timing=self._timing,
                seed=self._seed,
                on_unplug=self._unplugged,
            )
            self._dongles[serial] = dongle
        if plugged:
            self.plug(serial)
        return dongle

    def get(self, serial: str) -> VirtualDongle:
        try:
            return self._dongles[serial]
        except KeyError:
            raise BusError(f"no dongle {serial} on this bus; 'cable list' shows them") from None

    def dongles(self) -> list[VirtualDongle]:
        """Every attached dongle, plugged or not."""
        with self._lock:
            return list(self._dongles.values())

    def plugged(self) -> list[VirtualDongle]:
        return [d for d in self.dongles() if d.plugged]

    def plug(self, serial: str) -> VirtualDongle:
        dongle = self.get(serial)
        with self._lock:
            if dongle.plugged:
                return dongle
            used = {d.descriptor.address for d in self._dongles.values() if d.plugged}
            address = next(a for a in self._addresses if a not in used)
            dongle.power_on(address)
        self._emit("add", dongle)
        return dongle

    def unplug(self, serial: str) -> VirtualDongle:
        dongle = self.get(serial)
        dongle.unplug()  # calls back _unplugged, which emits the event
        return dongle

    def _unplugged(self, dongle: VirtualDongle) -> None:
        self._emit("remove", dongle)

    def subscribe(self, listener: Listener, *, replay: bool = True) -> Callable[[], None]:
        """Call ``listener(action, properties)`` on every plug/unplug; with ``replay``, first an
        "add" for each dongle already plugged. Returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)
            current = self.plugged() if replay else []
        for dongle in current:
            listener("add", udev_properties("add", dongle))

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, action: str, dongle: VirtualDongle) -> None:
        props = udev_properties(action, dongle)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(action, props)
