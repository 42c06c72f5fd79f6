"""Keys to app actions: the PC keyboard, and a remote's evdev device through the real reader.

/dev/uinput is not available on this machine, so the evdev reader is fed evdev's own
InputEvent objects through a real file descriptor (a pipe), the same code path a device takes.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable

import pytest
from evdev import InputEvent, ecodes

from tvapp.input.actions import ACTIONS, UnknownAction, check_action
from tvapp.input.evdev_remote import RemoteReader, actions_from_events, is_remote
from tvapp.input.keyboard import action_for_keycode


def _key(code: int, value: int = 1) -> InputEvent:
    return InputEvent(0, 0, ecodes.EV_KEY, code, value)


def test_keyboard_maps_arrows_enter_escape_backspace_h_digits_and_f1_to_f4() -> None:
    expected = {
        273: "up", 274: "down", 276: "left", 275: "right", 13: "ok", 27: "back",
        8: "back", 104: "home", 48: "0", 57: "9", 256: "0", 282: "red", 283: "green",
        284: "yellow", 285: "blue",
    }  # fmt: skip
    assert {code: action_for_keycode(code) for code in expected} == expected


def test_keyboard_ignores_other_keys_and_chords() -> None:
    assert action_for_keycode(97) is None  # "a"
    assert action_for_keycode(273, ["ctrl"]) is None


def test_remote_keys_map_to_the_same_actions() -> None:
    codes = {
        ecodes.KEY_OK: "ok", ecodes.KEY_NUMERIC_0: "0", ecodes.KEY_NUMERIC_9: "9",
        ecodes.KEY_RED: "red", ecodes.KEY_GREEN: "green", ecodes.KEY_YELLOW: "yellow",
        ecodes.KEY_BLUE: "blue", ecodes.KEY_HOMEPAGE: "home", ecodes.KEY_BACK: "back",
        ecodes.KEY_EXIT: "back", ecodes.KEY_ESC: "back", ecodes.KEY_UP: "up",
        ecodes.KEY_DOWN: "down", ecodes.KEY_LEFT: "left", ecodes.KEY_RIGHT: "right",
    }  # fmt: skip
    for code, action in codes.items():
        assert list(actions_from_events([_key(code)])) == [action]


def test_key_release_and_non_key_events_are_ignored() -> None:
    events = [_key(ecodes.KEY_OK, 0), InputEvent(0, 0, ecodes.EV_SYN, 0, 0)]
    assert list(actions_from_events(events)) == []


def test_auto_repeat_repeats_arrows_but_never_ok_or_digits() -> None:
    events = [_key(ecodes.KEY_DOWN, 2), _key(ecodes.KEY_OK, 2), _key(ecodes.KEY_NUMERIC_5, 2)]
    assert list(actions_from_events(events)) == ["down"]


def test_a_remote_is_told_from_a_keyboard_by_its_keys() -> None:
    assert is_remote([ecodes.KEY_OK, ecodes.KEY_UP])
    assert is_remote([ecodes.KEY_NUMERIC_1])
    assert not is_remote([ecodes.KEY_A, ecodes.KEY_ENTER, ecodes.KEY_UP])


def test_every_action_is_checked() -> None:
    assert check_action("ok") == "ok" and len(ACTIONS) == 21
    with pytest.raises(UnknownAction, match="use one of"):
        check_action("power")


class PipeDevice:
    """An input device: a readable fd, and ``read()`` giving evdev InputEvents."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        self.pending: queue.Queue[list[InputEvent]] = queue.Queue()

    def send(self, events: list[InputEvent]) -> None:
        self.pending.put(events)
        os.write(self.w, b"x")

    def fileno(self) -> int:
        return self.r

    def read(self) -> Iterable[InputEvent]:
        os.read(self.r, 1)
        return self.pending.get_nowait()

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def test_reader_thread_delivers_remote_keys_as_actions() -> None:
    device = PipeDevice()
    got: list[str] = []
    done = threading.Event()

    def on_action(action: str) -> None:
        got.append(action)
        if len(got) == 3:
            done.set()

    reader = RemoteReader(device, on_action).start()
    device.send([_key(ecodes.KEY_NUMERIC_1), _key(ecodes.KEY_NUMERIC_1, 0)])
    device.send([_key(ecodes.KEY_RED), _key(ecodes.KEY_OK)])
    assert done.wait(5)
    reader.stop()
    assert got == ["1", "red", "ok"]


def test_the_packaged_remote_keymap_sends_every_key_the_app_needs() -> None:
    import tomllib
    from pathlib import Path

    keymap = Path(__file__).resolve().parents[2] / "packaging/keymaps/tvpay-remote.toml"
    names = set(tomllib.loads(keymap.read_text())["protocols"][0]["scancodes"].values())
    codes = {ecodes.ecodes[name] for name in names}
    from tvapp.input.evdev_remote import KEY_ACTIONS

    reached = {KEY_ACTIONS[c] for c in codes if c in KEY_ACTIONS}
    assert reached == set(ACTIONS)
    assert is_remote(codes)
