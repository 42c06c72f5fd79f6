"""买电: the household's prepaid meters, each with its balance and what is left to do."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory

from tvapp.ui.screens.base import TvScreen


class MetersScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "back"
        self.legend = {"green": "Refresh", "yellow": "Token history"}
        self._rebuild = Clock.create_trigger(self._build_cards)

    def activate(self) -> None:
        self.app.prepaid_vm.bind(meters=self._rebuild)
        self._build_cards()

    def deactivate(self) -> None:
        self.app.prepaid_vm.unbind(meters=self._rebuild)

    def _build_cards(self, *_args: Any) -> None:
        grid = self.ids.meters
        grid.clear_widgets()
        meters = self.app.prepaid_vm.meters
        for meter in meters:
            card = Factory.MeterCard(focus_id=f"meter:{meter['meter_id']}")
            for key, value in meter.items():
                if key != "meter_id":  # kv-declared properties are set after creation
                    setattr(card, key, value)
            card.bind(on_press=lambda _w, m=meter["meter_id"]: self.app.controller.choose_meter(m))
            grid.add_widget(card)
        if meters and self.focus.focused in (None, "back"):
            self.focus.focused = f"meter:{meters[0]['meter_id']}"
        Clock.schedule_once(lambda _dt: self.refresh_focus(), 0)

    def on_colour(self, colour: str) -> None:
        if colour == "yellow":
            self.app.controller.open_tokens()
        else:
            self.app.controller.open_meters()
