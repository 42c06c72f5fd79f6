"""The notice shown at start when the payment journal was damaged, missing or unwritable."""

from __future__ import annotations

from typing import Any

from tvapp.ui.screens.base import TvScreen


class JournalScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "primary"

    def on_back(self) -> bool:
        self.app.controller.go_home()
        return True
