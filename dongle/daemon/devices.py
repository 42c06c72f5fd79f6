"""The dongles the daemon has open: found with pyusb, opened on hotplug "add", dropped on "remove"
or when the link reports the device gone, and one command at a time on each link."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dongle import usblink
from dongle.daemon.log import log
from dongle.errors import (
    DongleLinkError,
    DongleRemoved,
    DongleTimeout,
    MessageTooLarge,
    NoDongle,
    SeveralDongles,
)
from dongle.model import EventKind
from protocol.errors import DongleError, FrameLengthError
from protocol.frame import MAX_PAYLOAD
from protocol.messages import Command, KeepaliveStatus, Lifecycle
from protocol.usb import matches_product

# Commands after which the dongle's lifecycle, PIN state or retries may have changed.
_STATE_COMMANDS = frozenset(
    {
        Command.GENERATE_KEY,
        Command.WRITE_CERT,
        Command.SET_PIN,
        Command.CHANGE_PIN,
        Command.GET_PIN_TOKEN,
        Command.UNBLOCK_PIN,
        Command.LOCK,
        Command.WIPE,
    }
)
_INFO_KEYS = (
    "serial",
    "state",
    "firmware",
    "key_rev",
    "counter",
    "pin_set",
    "pin_retries",
    "puk_retries",
    "certificate",
)

Publish = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class Slot:
    """One open dongle. ``lock`` orders commands on its link; ``info`` is the last GET_INFO."""

    serial: str
    link: usblink.DongleLink
    bus: int | None
    address: int | None
    info: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    gone: bool = False
    closed: bool = False

    def close_link(self) -> None:
        """Close the link once (call with ``lock`` held, or when no command can be running)."""
        if not self.closed:
            self.closed = True
            self.link.close()


class DeviceManager:
    def __init__(
        self,
        backend: Any,
        vid: int,
        pid: int,
        command_timeout: float,
        publish: Publish,
        on_removed: Callable[[str], None],
    ) -> None:
        self._backend = backend
        self._vid = vid
        self._pid = pid
        self._timeout = command_timeout
        self._publish = publish
        self._on_removed = on_removed
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()  # guards _slots
        self._scan_lock = threading.Lock()  # one enumeration at a time

    # -- enumeration and hotplug ------------------------------------------------------------

    def scan(self) -> None:
        """Open every matching device that is not open yet; drop slots whose device vanished."""
        with self._scan_lock:
            try:
                devices = usblink.find_dongles(self._backend, vid=self._vid, pid=self._pid)
            except Exception as exc:  # the backend is a plug-in; its failures must not kill us
                log("scan_failed", level="error", error=exc)
                return
            present = {(d.bus, d.address) for d in devices}
            with self._lock:
                known = {(s.bus, s.address) for s in self._slots.values()}
                stale = [s for s in self._slots.values() if (s.bus, s.address) not in present]
            for slot in stale:
                self.drop(slot, "not enumerated")
            for device in devices:
                if (device.bus, device.address) not in known:
                    self._open(device)

    def on_hotplug(self, action: str, properties: Mapping[str, str]) -> None:
        """The one entry point of hotplug events, from udev or from a configured source."""
        if not matches_product(properties.get("PRODUCT", ""), self._vid, self._pid):
            return
        log("hotplug", action=action, bus=properties.get("BUSNUM"), dev=properties.get("DEVNUM"))
        if action == "add":
            self.scan()
        elif action == "remove":
            slot = self._slot_at(properties.get("BUSNUM"), properties.get("DEVNUM"))
            if slot is not None:
                self.drop(slot, "unplugged")
            else:
                self.scan()

    def _slot_at(self, bus: str | None, dev: str | None) -> Slot | None:
        try:
            where = (int(bus or ""), int(dev or ""))
        except ValueError:
            return None
        with self._lock:
            return next((s for s in self._slots.values() if (s.bus, s.address) == where), None)

    def _open(self, device: Any) -> None:
        link: usblink.DongleLink | None = None
        try:
            link = usblink.DongleLink.open(device)
            info = link.call(Command.GET_INFO, {"version": 1}, timeout=self._timeout)
        except (usblink.LinkError, DongleError, OSError, ValueError) as exc:
            # A device that will not talk is left alone: a later hotplug event retries it.
            log("open_failed", level="warning", bus=device.bus, dev=device.address, error=exc)
            if link is not None:
                link.close()
            return
        serial = str(info.get("serial") or link.serial)
        slot = Slot(serial, link, device.bus, device.address, _pick_info(info, serial))
        with self._lock:
            previous = self._slots.get(serial)
        if previous is not None:  # replugged before its removal was seen
            self.drop(previous, "replaced")
        with self._lock:
            self._slots[serial] = slot
        log(
            "dongle_opened", serial=serial, state=slot.info["state"], bus=slot.bus, dev=slot.address
        )
        self._publish(
            {"event": EventKind.INSERTED.value, "serial": serial, "state": slot.info["state"]}
        )

    def drop(self, slot: Slot, reason: str) -> None:
        """Forget a dongle; closes its link at once unless a command is running on it."""
        with self._lock:
            if slot.gone or self._slots.get(slot.serial) is not slot:
                return
            slot.gone = True
            del self._slots[slot.serial]
        if slot.lock.acquire(blocking=False):
            try:
                slot.close_link()
            finally:
                slot.lock.release()
        # else the command running on it closes the link when it returns (see call)
        log("dongle_removed", serial=slot.serial, reason=reason)
        self._on_removed(slot.serial)
        self._publish({"event": EventKind.REMOVED.value, "serial": slot.serial})

    def close_all(self) -> None:
        with self._lock:
            slots = list(self._slots.values())
        for slot in slots:
            self.drop(slot, "shutdown")

    # -- queries and commands ---------------------------------------------------------------

    def serials(self) -> list[str]:
        with self._lock:
            return sorted(self._slots)

    def resolve(self, serial: str | None) -> str:
        """The serial a request addresses: the named dongle, or the only one plugged in."""
        with self._lock:
            if serial is not None:
                if serial not in self._slots:
                    raise NoDongle(f"dongle {serial} is not plugged in: insert it")
                return serial
            serials = sorted(self._slots)
        if not serials:
            raise NoDongle()
        if len(serials) > 1:
            raise SeveralDongles(serials)
        return serials[0]

    def cached_info(self, serial: str) -> dict[str, Any]:
        return dict(self._slot(serial).info)

    def _slot(self, serial: str) -> Slot:
        with self._lock:
            slot = self._slots.get(serial)
        if slot is None:
            raise DongleRemoved(f"dongle {serial} was unplugged: plug it back in")
        return slot

    def call(
        self,
        serial: str,
        command: Command,
        params: dict[str, Any] | None = None,
        *,
        cancel: threading.Event | None = None,
        on_keepalive: Callable[[KeepaliveStatus], None] | None = None,
    ) -> dict[str, Any]:
        """Run one dongle command; the daemon's typed errors for link failures, and
        ``protocol.errors.DongleError`` for the dongle's own non-OK answers."""
        slot = self._slot(serial)
        with slot.lock:
            if slot.gone:
                raise DongleRemoved(f"dongle {serial} was unplugged: plug it back in")
            try:
                return self._run(slot, command, params, cancel, on_keepalive)
            finally:
                if slot.gone:
                    slot.close_link()

    def _run(
        self,
        slot: Slot,
        command: Command,
        params: dict[str, Any] | None,
        cancel: threading.Event | None,
        on_keepalive: Callable[[KeepaliveStatus], None] | None,
    ) -> dict[str, Any]:
        serial = slot.serial
        try:
            result = slot.link.call(
                command,
                params,
                timeout=self._timeout,
                on_keepalive=on_keepalive,
                cancel=cancel,
            )
        except DongleError:
            if command in _STATE_COMMANDS:  # e.g. a wrong PIN costs a retry
                self._refresh(slot)
            raise
        except FrameLengthError:  # raised while encoding: nothing reached the dongle
            raise MessageTooLarge(
                f"the arguments make a {command.name} command larger than the dongle's "
                f"{MAX_PAYLOAD}-byte frame: send less data in one request",
                MAX_PAYLOAD,
            ) from None
        except usblink.DongleRemoved:
            self._lost(slot)
            raise DongleRemoved() from None
        except usblink.LinkTimeout:
            raise DongleTimeout() from None
        except usblink.LinkError as exc:
            raise DongleLinkError(f"{exc}: unplug the dongle and plug it back in") from None
        if command in _STATE_COMMANDS:
            self._refresh(slot)
        elif command is Command.SIGN_PAYMENT and isinstance(result.get("counter"), int):
            slot.info["counter"] = max(slot.info.get("counter", 0), result["counter"])
        elif command is Command.GET_INFO:
            self._update(slot, _pick_info(result, serial))
        return result

    def _lost(self, slot: Slot) -> None:
        # Called with slot.lock held: call() closes the link on its way out.
        self.drop(slot, "link lost")

    def _refresh(self, slot: Slot) -> None:
        """Re-read GET_INFO after a command that may change state (slot.lock held)."""
        try:
            info = slot.link.call(Command.GET_INFO, {"version": 1}, timeout=self._timeout)
        except usblink.DongleRemoved:
            self._lost(slot)
            return
        except (usblink.LinkError, DongleError) as exc:
            log("refresh_failed", level="warning", serial=slot.serial, error=exc)
            return
        self._update(slot, _pick_info(info, slot.serial))

    def _update(self, slot: Slot, info: dict[str, Any]) -> None:
        before = slot.info.get("state")
        slot.info = info
        after = info["state"]
        if after == before:
            return
        log("state_changed", serial=slot.serial, before=before, after=after)
        self._publish(
            {"event": EventKind.STATE_CHANGED.value, "serial": slot.serial, "state": after}
        )
        if after == Lifecycle.PIN_BLOCKED.value:
            self._publish(
                {"event": EventKind.PIN_BLOCKED.value, "serial": slot.serial, "state": after}
            )


def _pick_info(info: dict[str, Any], serial: str) -> dict[str, Any]:
    picked = {key: info[key] for key in _INFO_KEYS if key in info}
    picked["serial"] = serial
    picked.setdefault("state", "unknown")
    return picked
