"""Settings: language, binding an account by typing its number, and about."""

from __future__ import annotations

from typing import Any

from tvapp.ui.screens.base import TvScreen


class SettingsScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "lang:zh_CN"
        self.legend = {"yellow": "Bind the account"}

    def on_digit(self, digit: str) -> bool:
        self.app.controller.bind_digit(digit)
        return True

    def on_back(self) -> bool:
        if self.app.settings_vm.bind_number and self.focus.focused == "bind:number":
            self.app.controller.bind_delete()
            return True
        return False

    def on_colour(self, colour: str) -> None:
        self.app.controller.bind_account()
