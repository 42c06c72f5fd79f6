"""PC keyboard keys (Kivy/SDL key codes) to app actions, for development and SDL remotes.

SDL reports the remote's KEY_OK, colour and numeric keys as "unknown", so real remotes are read
from evdev as well (tvapp.input.evdev_remote); the keys SDL does pass through map here.
"""

from __future__ import annotations

# Kivy's keycodes (SDL keysyms folded by Kivy's window) for the keys we use.
KEYCODES: dict[int, str] = {
    273: "up",
    274: "down",
    275: "right",
    276: "left",
    13: "ok",  # Enter
    271: "ok",  # keypad Enter
    27: "back",  # Esc
    8: "back",  # Backspace
    104: "home",  # H
    278: "home",  # Home key
    282: "red",  # F1
    283: "green",  # F2
    284: "yellow",  # F3
    285: "blue",  # F4
    **{48 + d: str(d) for d in range(10)},  # top-row digits
    **{256 + d: str(d) for d in range(10)},  # keypad digits
}


def action_for_keycode(keycode: int, modifiers: list[str] | tuple[str, ...] = ()) -> str | None:
    """The action of a keyboard key, or None for keys the app ignores (and chords with Ctrl/Alt)."""
    if any(m in ("ctrl", "alt", "meta") for m in modifiers):
        return None
    return KEYCODES.get(keycode)
