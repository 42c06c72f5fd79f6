"""The token (电费码) of a token meter's purchase: 20 digits in five large groups of four, read
aloud on request, and the earlier tokens bought on this box."""

from __future__ import annotations

from typing import Any

from tvapp.ui.screens.base import TvScreen


class TokenScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "done"
        self.legend = {"yellow": "Read aloud"}

    def activate(self) -> None:
        self.focus.focused = None

    def on_colour(self, colour: str) -> None:
        self.app.controller.speak_token()

    def on_back(self) -> bool:
        self.app.controller.go_home()
        return True
