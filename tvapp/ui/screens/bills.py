"""Bills of one account: period, usage, amount, due date, and a 12-month usage chart."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory

from tvapp.ui.screens.base import TvScreen


class BillsScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "back"
        self.legend = {"red": "History", "green": "Pay the oldest bill"}
        self._rebuild = Clock.create_trigger(self._build_rows)

    def activate(self) -> None:
        self.app.bills_vm.bind(bills=self._rebuild)
        self._build_rows()

    def deactivate(self) -> None:
        self.app.bills_vm.unbind(bills=self._rebuild)

    def _build_rows(self, *_args: Any) -> None:
        box = self.ids.rows
        box.clear_widgets()
        unpaid = [b for b in self.app.bills_vm.bills if b["status"] == "unpaid"]
        for bill in self.app.bills_vm.bills:
            row = Factory.BillRow(focus_id=f"bill:{bill['bill_id']}")
            for key, value in bill.items():
                if key != "bill_id":  # kv-declared properties are set after creation
                    setattr(row, key, value)
            row.bind(on_press=lambda _w, b=bill["bill_id"]: self.app.controller.choose_bill(b))
            box.add_widget(row)
        if unpaid:
            # Land on the bill that most needs paying: the oldest unpaid one.
            self.focus.focused = f"bill:{unpaid[-1]['bill_id']}"
        Clock.schedule_once(lambda _dt: self.refresh_focus(), 0)

    def on_colour(self, colour: str) -> None:
        if colour == "red":
            self.app.controller.open_history()
            return
        unpaid = [b for b in self.app.bills_vm.bills if b["status"] == "unpaid"]
        if unpaid:
            self.app.controller.choose_bill(unpaid[-1]["bill_id"])
