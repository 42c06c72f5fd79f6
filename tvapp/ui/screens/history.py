"""History of payments with their status; OK on a paid one shows its receipt again, yellow
asks the utility whether the focused payment was credited (查询到账)."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory

from tvapp.ui.screens.base import TvScreen


class HistoryScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "back"
        self.legend = {"green": "Refresh", "yellow": "Check crediting"}
        self._rebuild = Clock.create_trigger(self._build_rows)

    def activate(self) -> None:
        self.app.history_vm.bind(payments=self._rebuild)
        self._build_rows()

    def deactivate(self) -> None:
        self.app.history_vm.unbind(payments=self._rebuild)

    def _build_rows(self, *_args: Any) -> None:
        box = self.ids.rows
        box.clear_widgets()
        for payment in self.app.history_vm.payments:
            row = Factory.PaymentRow(focus_id=f"payment:{payment['key']}")
            for key, value in payment.items():
                if key != "key":  # kv-declared properties are set after creation
                    setattr(row, key, value)
            row.bind(on_press=lambda _w, k=payment["key"]: self.app.controller.show_receipt(k))
            box.add_widget(row)
        Clock.schedule_once(lambda _dt: self.refresh_focus(), 0)

    def on_colour(self, colour: str) -> None:
        focused = self.focused_id or ""
        if colour == "yellow":
            if focused.startswith("payment:"):
                self.app.controller.check_crediting(focused.removeprefix("payment:"))
            return
        self.app.controller.open_history()
