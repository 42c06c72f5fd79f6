"""The screen base class: focus handling, colour keys, activate/deactivate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kivy.app import App
from kivy.properties import DictProperty, StringProperty
from kivy.uix.screenmanager import Screen
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from tvapp.focus import Direction, FocusModel, Rect
from tvapp.ui.widgets import Focusable


def _shown(widget: Widget) -> bool:
    node: Any = widget
    # Up to the screen (or the window, for the legend), any hidden ancestor hides it.
    while node is not None and not isinstance(node, Screen) and hasattr(node, "disabled"):
        if node.opacity <= 0 or node.disabled:
            return False
        node = node.parent
    return True


def walk_shown(root: Widget) -> Iterator[Widget]:
    """Widgets under ``root`` that are on screen (not hidden by opacity or disabled)."""
    for widget in root.walk(restrict=True):
        if widget.opacity > 0 and _shown(widget):
            yield widget


class TvScreen(Screen):
    """Subclasses set ``default_focus`` and ``legend`` and override the ``on_*`` hooks."""

    default_focus = StringProperty("")
    legend = DictProperty({})  # colour key -> message id of what it does here

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.focus = FocusModel()

    @property
    def app(self) -> Any:
        return App.get_running_app()

    # -- lifecycle -------------------------------------------------------------------------

    def activate(self) -> None:
        """Called when the screen is shown: bind to view-models here."""

    def deactivate(self) -> None:
        """Called when the screen is left: unbind here."""

    def on_pre_enter(self, *_args: Any) -> None:
        self.focus.default = self.default_focus
        self.activate()
        for colour in ("red", "green", "yellow", "blue"):
            setattr(self.app.vm, f"legend_{colour}", self.legend.get(colour, ""))
        self.refresh_focus()

    def on_leave(self, *_args: Any) -> None:
        self.deactivate()

    # -- focus -----------------------------------------------------------------------------

    def focusables(self) -> dict[str, Widget]:
        return {
            w.focus_id: w
            for w in walk_shown(self)
            if isinstance(w, Focusable) and w.focusable and w.focus_id
        }

    def _rects(self, widgets: dict[str, Widget]) -> dict[str, Rect]:
        rects = {}
        for focus_id, w in widgets.items():
            x, y = w.to_window(w.x, w.y)
            rects[focus_id] = Rect(x, y, w.width, w.height)
        return rects

    def refresh_focus(self) -> None:
        """Make sure exactly one shown item carries the focus ring (after any layout change)."""
        widgets = self.focusables()
        chosen = self.focus.resolve(self._rects(widgets))
        for focus_id, w in widgets.items():
            w.focused = focus_id == chosen
        for w in self.walk(restrict=True):
            if isinstance(w, Focusable) and w.focus_id not in widgets:
                w.focused = False
        if chosen is not None:
            self._scroll_into_view(widgets[chosen])

    def set_focus(self, focus_id: str) -> None:
        self.focus.focus(focus_id)
        self.refresh_focus()

    @property
    def focused_id(self) -> str | None:
        return self.focus.focused

    def _scroll_into_view(self, widget: Widget) -> None:
        parent = widget.parent
        while parent is not None and parent is not self:
            if isinstance(parent, ScrollView):
                parent.scroll_to(widget, padding=10, animate=False)
                # Apply the scroll now, not next frame: the next arrow must see the new layout.
                parent.update_from_scroll()
                return
            parent = parent.parent

    # -- actions ---------------------------------------------------------------------------

    def handle(self, action: str) -> bool:
        """Handle a remote action; False lets the app apply the global meaning (Back, Home)."""
        if action in ("up", "down", "left", "right"):
            widgets = self.focusables()
            self.focus.move(Direction(action), self._rects(widgets))
            self.refresh_focus()
            return True
        if action == "ok":
            widgets = self.focusables()
            target = widgets.get(self.focus.focused or "")
            if target is not None:
                target.dispatch("on_press")
            return True
        if action.isdigit():
            return self.on_digit(action)
        if action in self.legend:
            self.on_colour(action)
            return True
        if action == "back":
            return self.on_back()
        return False

    def on_digit(self, digit: str) -> bool:
        return False

    def on_colour(self, colour: str) -> None:
        """A colour key shown in this screen's legend was pressed."""

    def on_back(self) -> bool:
        return False
