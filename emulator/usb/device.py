"""One virtual payment dongle on the USB bus: descriptors, control requests, the two bulk
endpoints with 64-byte packet / short-packet / ZLP semantics, halts, reset, faults, and the
firmware and the card slot behind them.

Every call names the bus address the caller opened: after an unplug (and a re-plug, which gives a
new address, as real enumeration does) old handles get libusb's "no such device".
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from emulator.firmware.dongle import Clock, Firmware
from emulator.firmware.link import Link
from emulator.firmware.store import DongleStore, PowerCut
from emulator.usb.card_slot import CardSlot
from emulator.usb.descriptors import (
    CONFIGURATION,
    DESC_CONFIG,
    DESC_DEVICE,
    DESC_STRING,
    DeviceDescriptor,
    string_descriptor,
)
from emulator.usb.errors import (
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_OVERFLOW,
    no_device,
    pipe_error,
    timed_out,
    usb_error,
)
from emulator.usb.faults import Fault, FaultKind, FaultPlan
from protocol.frame import MAX_FRAME
from protocol.messages import Command
from protocol.usb import EP_IN, EP_OUT, PACKET_SIZE, packets

_REQ_GET_STATUS, _REQ_CLEAR_FEATURE, _REQ_GET_DESCRIPTOR = 0x00, 0x01, 0x06
_REQ_GET_CONFIGURATION, _REQ_SET_CONFIGURATION = 0x08, 0x09
_RECIPIENT_ENDPOINT = 0x02
_OUT_LIMIT = MAX_FRAME + PACKET_SIZE  # the dongle's receive buffer; longer transfers are cut


class VirtualDongle:
    def __init__(
        self,
        store: DongleStore,
        descriptor: DeviceDescriptor,
        *,
        clock: Clock = time.monotonic,
        timing: Mapping[Command, float] | None = None,
        seed: int | str = 0,
        on_unplug: Callable[[VirtualDongle], None] | None = None,
    ) -> None:
        self.store = store
        self.serial = store.serial
        self.descriptor = descriptor
        self.faults = FaultPlan(f"{seed}/{store.serial}")
        self.card_slot = CardSlot()  # mechanical: the card stays in it while unplugged
        self._clock = clock
        self._timing = timing
        self._on_unplug = on_unplug
        self._cond = threading.Condition()
        self._link: Link | None = None
        self._configuration = 0
        self._halted: set[int] = set()
        self._out = bytearray()
        self._in: deque[bytes] = deque()
        self._hold_until = 0.0
        # OUT transfers a "delay out" fault holds back: (due on the clock, transfer), in order.
        self._held_out: deque[tuple[float, bytes]] = deque()

    # -- power and plugging (driven by the bus) --------------------------------------------

    @property
    def plugged(self) -> bool:
        return self._link is not None

    @property
    def firmware(self) -> Firmware | None:
        link = self._link
        return link.firmware if link else None

    def power_on(self, address: int) -> None:
        """Plug in: the firmware boots from its store (fresh RAM: new key-agreement key)."""
        with self._cond:
            firmware = Firmware(self.store, self._clock)
            self.descriptor.address = address
            self.card_slot.power_on()
            self._link = Link(firmware, self.card_slot, self._clock, self._timing)
            self._reset_endpoints()
            self._configuration = 0

    def unplug(self) -> None:
        with self._cond:
            if self._link is None:
                return
            self._link = None
            self._reset_endpoints()
            self._cond.notify_all()
        if self._on_unplug is not None:
            self._on_unplug(self)

    def add_fault(self, fault: Fault) -> None:
        with self._cond:
            if fault.kind is FaultKind.POWER_CUT:
                self.store.cut_after = (
                    fault.at_byte
                    if fault.at_byte is not None
                    else self.faults.rng.randrange(1, 256)
                )
                self.store.interrupt = (lambda: os._exit(137)) if fault.exit_process else None
                return
            self.faults.add(fault)
            self._cond.notify_all()

    def clear_faults(self) -> None:
        with self._cond:
            self.faults.clear()
            self.card_slot.arm_removal(None)
            self._halted.clear()
            self.store.cut_after = None
            self._hold_until = 0.0
            self._held_out = deque((0.0, transfer) for _, transfer in self._held_out)
            self._cond.notify_all()

    def _reset_endpoints(self) -> None:
        self._out.clear()
        self._in.clear()
        self._halted.clear()
        self._hold_until = 0.0
        self._held_out.clear()

    def _check(self, address: int) -> Link:
        link = self._link
        if link is None or address != self.descriptor.address:
            raise no_device()
        return link

    def _lose_power(self) -> None:
        """A power cut hit a store write: the dongle is gone until it is plugged again."""
        self._cond.release()
        try:
            self.unplug()
        finally:
            self._cond.acquire()

    # -- control endpoint ------------------------------------------------------------------

    def control(
        self,
        address: int,
        request_type: int,
        request: int,
        value: int,
        index: int,
        data: bytes | int,
    ) -> bytes | int:
        """A control transfer: returns the IN data, or the OUT byte count."""
        with self._cond:
            self._check(address)
            if request_type & 0x80:
                assert isinstance(data, int)
                return self._control_in(request, value, data)
            if request == _REQ_SET_CONFIGURATION and value in (0, 1):
                self._configuration = value
                return 0
            if request == _REQ_CLEAR_FEATURE and request_type & 0x1F == _RECIPIENT_ENDPOINT:
                self._halted.discard(index & 0xFF)
                return 0
            raise pipe_error()  # a device STALLs control requests it does not support

    def _control_in(self, request: int, value: int, length: int) -> bytes:
        if request == _REQ_GET_DESCRIPTOR:
            kind, index = value >> 8, value & 0xFF
            blob: bytes | None = None
            if kind == DESC_DEVICE:
                blob = self.descriptor.to_bytes()
            elif kind == DESC_CONFIG and index == 0:
                blob = CONFIGURATION.to_bytes()
            elif kind == DESC_STRING:
                blob = string_descriptor(index, self.serial)
            if blob is None:
                raise pipe_error()
            return blob[:length]
        if request == _REQ_GET_CONFIGURATION:
            return bytes([self._configuration])[:length]
        if request == _REQ_GET_STATUS:
            return b"\x00\x00"[:length]
        raise pipe_error()

    def set_configuration(self, address: int, value: int) -> None:
        self.control(address, 0x00, _REQ_SET_CONFIGURATION, value, 0, b"")

    def clear_halt(self, address: int, endpoint: int) -> None:
        self.control(address, _RECIPIENT_ENDPOINT, _REQ_CLEAR_FEATURE, 0, endpoint, b"")

    def reset(self, address: int) -> None:
        """USB port reset: endpoints and the link's sequence memory start over; RAM is kept."""
        with self._cond:
            link = self._check(address)
            self._link = Link(link.firmware, self.card_slot, self._clock, self._timing)
            self._reset_endpoints()  # libusb restores the configuration after a reset
            self._cond.notify_all()

    # -- bulk endpoints --------------------------------------------------------------------

    def write(self, address: int, endpoint: int, data: bytes, timeout_ms: int) -> int:
        with self._cond:
            self._check(address)
            self._check_endpoint(endpoint, EP_OUT)
            if self.faults.take(FaultKind.STALL, "out"):
                self._halted.add(EP_OUT)
                raise pipe_error()
            chunks = list(packets(data)) if data else [b""]
            if len(data) % PACKET_SIZE == 0 and data:
                chunks.pop()  # a bulk write sends no ZLP of its own; the host sends one if needed
            if self.faults.take(FaultKind.UNPLUG, "out"):
                self._out.clear()
                self._lose_power()
                raise no_device()
            for chunk in chunks:
                self._out_packet(chunk)
            return len(data)

    def _out_packet(self, chunk: bytes) -> None:
        if len(self._out) < _OUT_LIMIT:
            self._out += chunk
        if len(chunk) == PACKET_SIZE:
            return
        transfer = bytes(self._out)
        self._out.clear()
        faults = self.faults
        if faults.take(FaultKind.DROP, "out"):
            return
        if faults.take(FaultKind.CORRUPT, "out"):
            transfer = faults.corrupt(transfer)
        copies = 2 if faults.take(FaultKind.DUPLICATE, "out") else 1
        delay = faults.take(FaultKind.DELAY, "out")
        due = self._clock() + (delay.seconds if delay else 0.0)
        # Transfers behind a held one wait for it: the device takes OUT transfers in order.
        self._held_out.extend([(due, transfer)] * copies)
        self._deliver_due()
        self._cond.notify_all()

    def _deliver_due(self) -> None:
        """Hand the held OUT transfers whose time has come to the firmware, in order."""
        now = self._clock()
        while self._held_out and self._held_out[0][0] <= now:
            _, transfer = self._held_out.popleft()
            link = self._link
            if link is None:
                return
            try:
                link.receive(transfer)
            except PowerCut:
                self._lose_power()
                return

    def read(self, address: int, endpoint: int, size: int, timeout_ms: int) -> bytes:
        data = self._read(address, endpoint, size, timeout_ms, wait=True)
        assert data is not None
        return data

    def poll(self, address: int, endpoint: int, size: int) -> bytes | None:
        """The IN transfer a read would get right now, or None when it would have to wait."""
        return self._read(address, endpoint, size, 0, wait=False)

    def _read(
        self, address: int, endpoint: int, size: int, timeout_ms: int, *, wait: bool
    ) -> bytes | None:
        deadline = None if timeout_ms <= 0 else time.monotonic() + timeout_ms / 1000
        with self._cond:
            while True:
                self._deliver_due()
                link = self._check(address)
                self._check_endpoint(endpoint, EP_IN)
                if not self._in and self._clock() >= self._hold_until:
                    try:
                        frame = link.transmit()
                    except PowerCut:
                        self._lose_power()
                        raise no_device() from None
                    if frame is not None:
                        self._queue_in(frame)
                        continue
                if self._in and self._clock() >= self._hold_until:
                    return self._collect(size)
                if not wait:
                    return None
                self._wait(link, deadline)

    def _wait(self, link: Link, deadline: float | None) -> None:
        now_real = time.monotonic()
        if deadline is not None and now_real >= deadline:
            raise timed_out()
        wakes = [deadline - now_real] if deadline is not None else []
        now = self._clock()
        event = link.next_event()
        if event is not None:
            wakes.append(max(0.0, event - now))
        if self._hold_until > now:
            wakes.append(self._hold_until - now)
        if self._held_out:
            wakes.append(max(0.0, self._held_out[0][0] - now))
        self._cond.wait(min(wakes) if wakes else None)

    def _queue_in(self, frame: bytes) -> None:
        faults = self.faults
        if faults.take(FaultKind.DROP, "in"):
            return
        if faults.take(FaultKind.CORRUPT, "in"):
            frame = faults.corrupt(frame)
        copies = 2 if faults.take(FaultKind.DUPLICATE, "in") else 1
        for _ in range(copies):
            self._in.extend(packets(frame))
        delay = faults.take(FaultKind.DELAY, "in")
        if delay:
            self._hold_until = self._clock() + delay.seconds
        if faults.take(FaultKind.UNPLUG, "in"):
            self._lose_power()
            raise no_device()
        if faults.take(FaultKind.STALL, "in"):
            self._halted.add(EP_IN)
            raise pipe_error()

    def _collect(self, size: int) -> bytes:
        """One IN transfer: packets until a short one (or a ZLP), or until the buffer is full."""
        result = bytearray()
        while self._in:
            packet = self._in[0]
            if len(result) + len(packet) > size:
                if result:
                    break
                self._in.popleft()
                raise usb_error(LIBUSB_ERROR_OVERFLOW)
            self._in.popleft()
            result += packet
            if len(packet) < PACKET_SIZE or len(result) == size:
                break
        return bytes(result)

    def _check_endpoint(self, endpoint: int, expected: int) -> None:
        if endpoint != expected:
            raise usb_error(LIBUSB_ERROR_INVALID_PARAM)
        if endpoint in self._halted:
            raise pipe_error()
