"""Full-screen states (no dongle, PIN blocked, network down, payment refused...) and the
exit question."""

from __future__ import annotations

from typing import Any

from tvapp.ui.screens.base import TvScreen


class StateScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "primary"

    def activate(self) -> None:
        self.focus.focused = None  # each state starts on its main button


class ExitScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "stay"

    def activate(self) -> None:
        self.focus.focused = None  # never pre-select "Exit"

    def on_back(self) -> bool:
        self.app.controller.go_back()
        return True
