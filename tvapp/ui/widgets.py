"""Widgets of the 10-foot UI: focusable buttons and cards, the colour-key legend, the usage chart.

Their look lives in kv/widgets.kv; here only behaviour.
"""

from __future__ import annotations

from kivy.graphics import Color, InstructionGroup, Line, Rectangle
from kivy.metrics import dp
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from tvapp.ui import theme


class Focusable:
    """Something the focus engine can land on; OK dispatches ``on_press``.

    ``focus_id`` names it for the focus engine, screen memory and the automation API. The
    focus ring is added to the canvas only while focused: a transparent ring on every item
    would still cost a thick-line mesh each frame (software rendering on a box is slow).
    """

    focus_id = StringProperty("")
    focused = BooleanProperty(False)
    focusable = BooleanProperty(True)
    _ring: InstructionGroup | None = None

    def on_focused(self, _widget: object, focused: bool) -> None:
        if focused and self._ring is None:
            self._ring = InstructionGroup()
            self._ring.add(Color(*theme.FOCUS_RING))
            self._ring_line = Line(width=dp(theme.FOCUS_RING_WIDTH))
            self._ring.add(self._ring_line)
            self.canvas.after.add(self._ring)
            self.bind(pos=self._place_ring, size=self._place_ring)
            self._place_ring()
        elif not focused and self._ring is not None:
            self.canvas.after.remove(self._ring)
            self.unbind(pos=self._place_ring, size=self._place_ring)
            self._ring = None

    def _place_ring(self, *_args: object) -> None:
        gap = dp(4)
        self._ring_line.rounded_rectangle = (
            self.x - gap,
            self.y - gap,
            self.width + 2 * gap,
            self.height + 2 * gap,
            dp(theme.RADIUS) + gap,
        )


class FocusButton(Focusable, ButtonBehavior, Label):
    # Buttons grow with their text (translations differ in length) but never below these.
    min_width = NumericProperty(dp(180))
    button_height = NumericProperty(dp(60))


class FocusCard(Focusable, ButtonBehavior, BoxLayout):
    pass


class UsageChart(Widget):
    """Bars of monthly usage, oldest on the left; the newest bar is highlighted."""

    values = ListProperty([])

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bind(values=self._redraw, pos=self._redraw, size=self._redraw)

    def _redraw(self, *_args: object) -> None:
        self.canvas.clear()
        if not self.values:
            return
        top = max(self.values) or 1.0
        count = len(self.values)
        slot = self.width / count
        bar = slot * 0.6
        with self.canvas:
            for i, value in enumerate(self.values):
                Color(*(theme.ACCENT if i == count - 1 else theme.TEXT_DIM))
                height = max(dp(2), (self.height - dp(4)) * value / top)
                Rectangle(pos=(self.x + i * slot + (slot - bar) / 2, self.y), size=(bar, height))


class QrView(Widget):
    """A QR code's texture stretched to the widget, one sharp square per module.

    Drawn on the canvas rather than with ``Image``: Debian 12's Kivy 2.1 (the box's) has no
    ``fit_mode`` and would show the texture at its own size, one pixel per module, too small for
    a phone to scan."""

    texture = ObjectProperty(None, allownone=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bind(texture=self._redraw, pos=self._redraw, size=self._redraw)

    def _redraw(self, *_args: object) -> None:
        self.canvas.clear()
        if self.texture is None:
            return
        with self.canvas:
            Color(1, 1, 1, 1)
            Rectangle(texture=self.texture, pos=self.pos, size=self.size)
