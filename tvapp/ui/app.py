"""The Kivy App: builds the screens, routes every key source to ``press``, exposes state.

``press(action)`` and ``screen_state()`` are the automation API's entry points (the emulator's
HTTP API and the tests call them); the PC keyboard and the remote's evdev device go through
``press`` too, so every input path behaves the same.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.lang import Builder
from kivy.uix.label import Label
from kivy.uix.screenmanager import NoTransition

from tvapp import __version__
from tvapp.config import TvConfig
from tvapp.input.actions import check_action
from tvapp.input.keyboard import action_for_keycode
from tvapp.services.container import Services
from tvapp.ui import viewmodels
from tvapp.ui.boot import finish_each_offscreen_frame
from tvapp.ui.controller import Controller
from tvapp.ui.journal_notice import JournalNoticeVM, show_journal_notice
from tvapp.ui.prepaid_vm import PrepaidVM
from tvapp.ui.screens.base import walk_shown
from tvapp.ui.screens.bills import BillsScreen
from tvapp.ui.screens.buy import BuyScreen
from tvapp.ui.screens.cardwrite import CardWriteScreen
from tvapp.ui.screens.history import HistoryScreen
from tvapp.ui.screens.home import HomeScreen
from tvapp.ui.screens.journal import JournalScreen
from tvapp.ui.screens.meters import MetersScreen
from tvapp.ui.screens.pay import ConfirmScreen, ProgressScreen, ReceiptScreen
from tvapp.ui.screens.settings import BindCodeScreen, SettingsScreen
from tvapp.ui.screens.state import ExitScreen, StateScreen
from tvapp.ui.screens.token import TokenScreen
from tvapp.ui.translate import tr
from tvapp.ui.widgets import FocusButton, FocusCard, QrView, UsageChart

log = logging.getLogger("tvapp.ui")

KV_DIR = Path(__file__).parent / "kv"
KV_FILES = (
    "widgets.kv",
    "root.kv",
    "home.kv",
    "bills.kv",
    "confirm.kv",
    "progress.kv",
    "receipt.kv",
    "history.kv",
    "settings.kv",
    "bindcode.kv",
    "state.kv",
    "journal.kv",
    "meters.kv",
    "buy.kv",
    "cardwrite.kv",
    "token.kv",
)
SCREENS = {
    "home": HomeScreen,
    "bills": BillsScreen,
    "confirm": ConfirmScreen,
    "progress": ProgressScreen,
    "receipt": ReceiptScreen,
    "history": HistoryScreen,
    "settings": SettingsScreen,
    "bindcode": BindCodeScreen,
    "state": StateScreen,
    "journal": JournalScreen,
    "exit": ExitScreen,
    "meters": MetersScreen,
    "buy": BuyScreen,
    "cardwrite": CardWriteScreen,
    "token": TokenScreen,
}


class TvPayApp(App):
    title = "TVPay"

    def __init__(self, settings: TvConfig, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.services = services
        self.vm = viewmodels.AppVM(
            language=tr.language, gateway_url=settings.gateway_url, version=__version__
        )
        self.home_vm = viewmodels.HomeVM()
        self.bills_vm = viewmodels.BillsVM()
        self.pay_vm = viewmodels.PayVM()
        self.history_vm = viewmodels.HistoryVM()
        self.crediting_vm = viewmodels.CreditingVM()
        self.settings_vm = viewmodels.SettingsVM()
        self.state_vm = viewmodels.StateVM()
        self.prepaid_vm = PrepaidVM()
        self.journal_vm = JournalNoticeVM()
        self.controller: Controller | None = None
        self._main_thread = threading.current_thread()

    def build(self) -> Any:
        for widget in (FocusButton, FocusCard, QrView, UsageChart):
            Factory.register(widget.__name__, cls=widget)
        for name in KV_FILES:
            Builder.load_file(str(KV_DIR / name))
        root = Factory.TvRoot()
        self.sm = root.ids.sm
        self.sm.transition = NoTransition()  # keys pressed "during a transition" just work
        self.controller = Controller(self, self.services)
        self.show_screen("home")
        Window.bind(on_key_down=self._on_key_down)
        finish_each_offscreen_frame()
        return root

    def screen(self, name: str) -> Any:
        """The screen called ``name``, built the first time it is needed (start-up speed and
        memory: most sessions never open most screens)."""
        if not self.sm.has_screen(name):
            self.sm.add_widget(SCREENS[name](name=name))
        return self.sm.get_screen(name)

    def show_screen(self, name: str) -> None:
        self.screen(name)
        self.sm.current = name

    def on_start(self) -> None:
        assert self.controller is not None
        self.controller.watch_dongle()
        show_journal_notice(self)  # before Home: the household reads it while accounts load
        self.controller.start()
        self.controller.start_resubmission(self.settings.resubmit_seconds)

    def on_stop(self) -> None:
        if self.controller is not None:
            self.controller.shutdown()

    def _on_key_down(
        self, _window: Any, keycode: int, _scancode: int, _text: Any, modifiers: list
    ) -> bool:
        action = action_for_keycode(keycode, modifiers)
        if action is None:
            return False
        self.press(action)
        return True

    # -- automation API --------------------------------------------------------------------

    def press(self, action: str) -> None:
        """Act on one remote key: up, down, left, right, ok, back, home, 0..9, red..blue.

        Safe to call from any thread (the action is handed to the UI thread).
        """
        check_action(action)
        if threading.current_thread() is not self._main_thread:
            Clock.schedule_once(lambda _dt: self.press(action), 0)
            return
        assert self.controller is not None
        screen = self.sm.current_screen
        if screen.handle(action):
            return
        if action == "back":
            self.controller.go_back()
        elif action == "home" and self.sm.current != "progress":
            self.controller.go_home()

    def screen_state(self) -> dict[str, Any]:
        """What is on screen: screen id, focused element, focusable ids, visible texts.

        Call on the UI thread (the automation API schedules it there).
        """
        screen = self.sm.current_screen
        labels = [
            w
            for root in (screen, self.root.ids.notice, self.root.ids.legend)
            for w in walk_shown(root)
            if isinstance(w, Label) and w.text.strip()
        ]
        positions = {id(w): w.to_window(w.x, w.top) for w in labels}
        labels.sort(key=lambda w: (-round(positions[id(w)][1]), positions[id(w)][0]))
        return {
            "screen": screen.name,
            "focus": screen.focused_id,
            "focusables": sorted(screen.focusables()),
            "texts": [w.text.strip() for w in labels],
            "language": tr.language,
            "state": {"state": self.state_vm.kind, "journal": self.journal_vm.condition}.get(
                screen.name, ""
            ),
        }
