"""Hotplug sources: udev on a real box, or a source named by configuration (the emulator's).

Both call the same ``callback(action, properties)`` with udev-style properties ("add" / "remove",
``PRODUCT``, ``BUSNUM``, ``DEVNUM``...). Neither polls: udev events arrive on a netlink socket
watched by pyudev's observer thread; a configured source runs its own event-driven thread.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

from dongle.errors import DaemonError

HotplugCallback = Callable[[str, Mapping[str, str]], None]
StopHotplug = Callable[[], None]


class HotplugError(DaemonError):
    code = "hotplug"


def start_hotplug(source: str, callback: HotplugCallback) -> StopHotplug:
    """Start delivering events from ``source`` ("udev", "none" or "module:start?ARG")."""
    if source == "udev":
        return _start_udev(callback)
    if source == "none":  # a box with a dongle that is never unplugged, or a test
        return lambda: None
    start, arg = load_entry_point(source)
    try:
        return start(arg, callback)
    except Exception as exc:  # a plug-in: whatever it raises means "no events"
        raise HotplugError(f"hotplug source {source!r} failed to start: {exc}") from None


def load_entry_point(spec: str) -> tuple[Callable, str]:  # type: ignore[type-arg]
    """Resolve ``"package.module:attribute?ARG"`` into the attribute and ARG ("" if absent)."""
    target, _, arg = spec.partition("?")
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise HotplugError(f"hotplug source {spec!r} must be 'udev' or 'module:function?ARG'")
    try:
        entry = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise HotplugError(f"cannot load hotplug source {spec!r}: {exc}") from None
    if not callable(entry):
        raise HotplugError(f"hotplug source {spec!r} is not a function")
    return entry, arg


def _start_udev(callback: HotplugCallback) -> StopHotplug:
    try:
        import pyudev

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        monitor.filter_by(subsystem="usb", device_type="usb_device")
    except (ImportError, OSError) as exc:
        raise HotplugError(
            f"cannot listen to udev events ({exc}): run as root or set [hotplug] source"
        ) from None

    def deliver(device: pyudev.Device) -> None:
        callback(device.action or "", dict(device.properties))

    observer = pyudev.MonitorObserver(monitor, callback=deliver, name="udev-hotplug")
    observer.daemon = True
    observer.start()
    return observer.stop
