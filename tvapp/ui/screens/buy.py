"""买电: the amount (a preset, or whole yuan typed with the digits), the rules' refusals in words,
and the quote's electricity and tiers, before the confirm screen and the PIN."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory

from tvapp.ui.screens.base import TvScreen


class BuyScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "buy:next"
        self.legend = {"red": "Cancel", "green": "Next"}
        self._rebuild = Clock.create_trigger(self._build_presets)
        self._refocus = Clock.create_trigger(lambda _dt: self.refresh_focus())

    def activate(self) -> None:
        vm = self.app.prepaid_vm
        vm.bind(presets=self._rebuild, pending=self._refocus, quote_state=self._refocus)
        self._build_presets()
        presets = vm.presets
        self.default_focus = f"preset:{presets[0]['fen']}" if presets else "buy:next"
        self.focus.default = self.default_focus

    def deactivate(self) -> None:
        vm = self.app.prepaid_vm
        vm.unbind(presets=self._rebuild, pending=self._refocus, quote_state=self._refocus)

    def _build_presets(self, *_args: Any) -> None:
        row = self.ids.presets
        row.clear_widgets()
        for preset in self.app.prepaid_vm.presets:
            button = Factory.PresetButton(focus_id=f"preset:{preset['fen']}", text=preset["label"])
            button.bind(on_press=lambda _w, f=preset["fen"]: self.app.controller.buy_preset(f))
            row.add_widget(button)
        self._refocus()

    def on_digit(self, digit: str) -> bool:
        self.app.controller.buy_digit(digit)
        return True

    def on_back(self) -> bool:
        if self.app.prepaid_vm.digits:
            self.app.controller.buy_delete()
            return True
        return False

    def on_colour(self, colour: str) -> None:
        if colour == "green":
            self.app.controller.buy_next()
        else:
            self.app.controller.go_back()
