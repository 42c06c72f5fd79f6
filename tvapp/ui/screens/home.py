"""Home: the household, its accounts by utility with amounts due, a due/overdue banner."""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory

from tvapp.ui.screens.base import TvScreen


class HomeScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "history"
        self.legend = {"red": "History", "green": "Refresh", "yellow": "Settings"}
        self._rebuild = Clock.create_trigger(self._build_cards)

    def activate(self) -> None:
        self.app.home_vm.bind(accounts=self._rebuild)
        self._build_cards()

    def deactivate(self) -> None:
        self.app.home_vm.unbind(accounts=self._rebuild)

    def _build_cards(self, *_args: Any) -> None:
        grid = self.ids.cards
        grid.clear_widgets()
        for account in self.app.home_vm.accounts:
            card = Factory.AccountCard(focus_id=f"account:{account['account_id']}")
            for key, value in account.items():
                if key != "account_id":  # kv-declared properties are set after creation
                    setattr(card, key, value)
            card.bind(
                on_press=lambda _w, a=account["account_id"]: self.app.controller.open_account(a)
            )
            grid.add_widget(card)
        if self.app.home_vm.accounts and self.focus.focused in (None, "history"):
            self.focus.focused = f"account:{self.app.home_vm.accounts[0]['account_id']}"
        Clock.schedule_once(lambda _dt: self.refresh_focus(), 0)

    def on_colour(self, colour: str) -> None:
        controller = self.app.controller
        {
            "red": controller.open_history,
            "green": controller.refresh_home,
            "yellow": controller.open_settings,
        }[colour]()
