"""Writing the purchase onto the 购电卡: "请勿拔出购电卡" with each step, then the outcome; when the
card was pulled out, 补写卡 is on OK."""

from __future__ import annotations

from typing import Any

from tvapp.ui.screens.base import TvScreen

# Outcomes after which the card can be written again from here.
RETRY_OUTCOMES = frozenset(("incomplete", "no_card", "network", "unreadable", "error"))


class CardWriteScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "done"

    def activate(self) -> None:
        vm = self.app.prepaid_vm
        vm.bind(write_outcome=self._on_outcome)
        self._on_outcome(vm, vm.write_outcome)

    def deactivate(self) -> None:
        self.app.prepaid_vm.unbind(write_outcome=self._on_outcome)

    def _on_outcome(self, _vm: Any, outcome: str) -> None:
        self.default_focus = "rewrite" if outcome in RETRY_OUTCOMES else "done"
        self.focus.default = self.default_focus
        self.focus.focused = None
        self.legend = {"green": "Write the card again"} if outcome in RETRY_OUTCOMES else {}
        self.app.vm.legend_green = self.legend.get("green", "")

    def handle(self, action: str) -> bool:
        if self.app.controller.writing_card:
            return True  # the card is being written: no key may abandon it half-way
        return super().handle(action)

    def on_colour(self, colour: str) -> None:
        self.app.controller.write_card()

    def on_back(self) -> bool:
        self.app.controller.go_home()
        return True
