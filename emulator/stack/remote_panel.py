"""The on-screen remote beside the TV picture, when the emulator has a window on a display."""

from __future__ import annotations

from typing import Any

from kivy.core.window import Window
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout

# Rows of (label, action); None leaves a gap so the D-pad keeps its cross shape.
_LAYOUT: tuple[tuple[tuple[str, str] | None, ...], ...] = (
    (("Home", "home"), None, ("Back", "back")),
    (None, ("▲", "up"), None),
    (("◀", "left"), ("OK", "ok"), ("▶", "right")),
    (None, ("▼", "down"), None),
    (("1", "1"), ("2", "2"), ("3", "3")),
    (("4", "4"), ("5", "5"), ("6", "6")),
    (("7", "7"), ("8", "8"), ("9", "9")),
    (None, ("0", "0"), None),
)
_COLOURS = (
    ("red", (0.8, 0.2, 0.2, 1)),
    ("green", (0.2, 0.6, 0.2, 1)),
    ("yellow", (0.8, 0.7, 0.2, 1)),
    ("blue", (0.2, 0.4, 0.8, 1)),
)


def attach_remote_panel(app: Any, tv_size: tuple[int, int], width: int) -> GridLayout:
    """Pin the TV to the left ``tv_size`` and put a clickable remote in the strip beside it."""
    app.root.size_hint = (None, None)
    app.root.size = tv_size
    app.root.pos = (0, 0)
    panel = GridLayout(
        cols=3,
        spacing=6,
        padding=12,
        size_hint=(None, None),
        size=(width, tv_size[1]),
        pos=(tv_size[0], 0),
    )
    for row in _LAYOUT:
        for cell in row:
            if cell is None:
                panel.add_widget(GridLayout())
                continue
            label, action = cell
            button = Button(text=label, font_size="18sp")
            button.bind(on_release=lambda _b, a=action: app.press(a))
            panel.add_widget(button)
    colours = GridLayout(cols=4, spacing=4)
    for action, rgba in _COLOURS:
        button = Button(background_color=rgba, background_normal="")
        button.bind(on_release=lambda _b, a=action: app.press(a))
        colours.add_widget(button)
    panel.add_widget(GridLayout())
    panel.add_widget(colours)
    Window.add_widget(panel)
    return panel
