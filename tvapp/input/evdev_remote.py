"""Reads a TV remote's Linux input device directly, because SDL drops its special keys.

The kernel reports KEY_OK, KEY_NUMERIC_0..9, KEY_RED..KEY_BLUE, KEY_HOMEPAGE, KEY_BACK, KEY_EXIT
for IR and HID remotes (after ir-keytable loads packaging/keymaps/); SDL maps most of these to
"unknown". The device is found with pyudev by what it can send (a remote has KEY_OK or numeric
keys, a PC keyboard has neither), read on a background thread, and each key becomes an app action.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from evdev import InputDevice, InputEvent, ecodes

log = logging.getLogger("tvapp.input")

KEY_ACTIONS: dict[int, str] = {
    ecodes.KEY_UP: "up",
    ecodes.KEY_DOWN: "down",
    ecodes.KEY_LEFT: "left",
    ecodes.KEY_RIGHT: "right",
    ecodes.KEY_OK: "ok",
    ecodes.KEY_SELECT: "ok",
    ecodes.KEY_ENTER: "ok",
    ecodes.KEY_BACK: "back",
    ecodes.KEY_EXIT: "back",
    ecodes.KEY_ESC: "back",
    ecodes.KEY_HOMEPAGE: "home",
    ecodes.KEY_RED: "red",
    ecodes.KEY_GREEN: "green",
    ecodes.KEY_YELLOW: "yellow",
    ecodes.KEY_BLUE: "blue",
    **{getattr(ecodes, f"KEY_NUMERIC_{d}"): str(d) for d in range(10)},
}
REMOTE_SIGNATURE: frozenset[int] = frozenset(
    [ecodes.KEY_OK, *(getattr(ecodes, f"KEY_NUMERIC_{d}") for d in range(10))]
)
_KEY_DOWN, _KEY_REPEAT = 1, 2
# Holding an arrow scrolls through a list; holding OK or a digit must not pay or type twice.
_REPEATABLE = frozenset(("up", "down", "left", "right"))


def actions_from_events(events: Iterable[InputEvent]) -> Iterator[str]:
    """The app actions in a stream of input events (key presses and arrow auto-repeats)."""
    for event in events:
        if event.type != ecodes.EV_KEY:
            continue
        action = KEY_ACTIONS.get(event.code)
        if action is None:
            continue
        if event.value == _KEY_DOWN or (event.value == _KEY_REPEAT and action in _REPEATABLE):
            yield action


def is_remote(key_codes: Iterable[int]) -> bool:
    """Whether a device that can send ``key_codes`` is a TV remote rather than a keyboard."""
    return not REMOTE_SIGNATURE.isdisjoint(key_codes)


def find_remotes() -> list[str]:
    """Device nodes (/dev/input/eventN) of the remotes present, found through udev."""
    import pyudev

    nodes = []
    for device in pyudev.Context().list_devices(subsystem="input"):
        node = device.device_node
        if not node or not os.path.basename(node).startswith("event"):
            continue
        try:
            with InputDevice(node) as dev:
                keys = dev.capabilities().get(ecodes.EV_KEY, [])
        except OSError as exc:
            log.warning("event=remote_probe_failed node=%s error=%s", node, exc.strerror)
            continue
        if is_remote(keys):
            nodes.append(node)
    return sorted(nodes)


class EventSource(Protocol):
    """What the reader needs of an input device (evdev.InputDevice provides it)."""

    def fileno(self) -> int: ...

    def read(self) -> Iterable[InputEvent]: ...

    def close(self) -> None: ...


class RemoteReader:
    """Reads one input device on a daemon thread and calls ``on_action`` for each key."""

    def __init__(self, source: EventSource, on_action: Callable[[str], None]) -> None:
        self._source = source
        self._on_action = on_action
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="remote-reader", daemon=True)

    @classmethod
    def open(cls, node: str, on_action: Callable[[str], None]) -> RemoteReader:
        return cls(InputDevice(node), on_action)

    def start(self) -> RemoteReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._source.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._source.fileno(), selectors.EVENT_READ, "device")
            selector.register(self._wake_r, selectors.EVENT_READ, "stop")
            while True:
                for key, _ in selector.select():
                    if key.data == "stop":
                        return
                    try:
                        events = list(self._source.read())
                    except BlockingIOError:
                        continue
                    except OSError as exc:  # unplugged: the remote's receiver went away
                        log.warning("event=remote_lost error=%s", exc.strerror)
                        return
                    for action in actions_from_events(events):
                        self._on_action(action)


def start_remote_readers(on_action: Callable[[str], None]) -> list[RemoteReader]:
    """Start a reader for every remote found; an empty list when there is none (or no access)."""
    readers = []
    for node in find_remotes():
        try:
            readers.append(RemoteReader.open(node, on_action).start())
            log.info("event=remote_found node=%s", node)
        except OSError as exc:
            log.warning("event=remote_open_failed node=%s error=%s", node, exc.strerror)
    return readers
