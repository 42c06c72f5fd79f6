"""Widgets of the 10-foot UI: focusable buttons and cards, the colour-key legend, the usage chart.

Their look lives in kv/widgets.kv; here only behaviour.
"""

from __future__ import annotations

from kivy.graphics import Color, Rectangle
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from tvapp.ui import theme


class Focusable:
    """Something the focus engine can land on; OK dispatches ``on_press``.

    ``focus_id`` names it for the focus engine, screen memory and the automation API.
    """

    focus_id = StringProperty("")
    focused = BooleanProperty(False)
    focusable = BooleanProperty(True)


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
