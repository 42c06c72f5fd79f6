"""Settings: language, binding an account by typing its number and bill's bind code, and about."""

from __future__ import annotations

from typing import Any

from kivy.factory import Factory

from tvapp.ui.screens.base import TvScreen
from tvapp.ui.translate import tr


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


def _retranslate(button: Any, label: str) -> None:
    """Keep a button made in Python in the current language, as kv's ``tr._`` rules are."""

    def update(*_args: Any) -> None:
        button.text = tr._(label)

    tr.fbind("_", update, None)  # Translator.switch calls observers with (args[0], None, None)
    update()


class BindCodeScreen(TvScreen):
    """The bind code printed on the bill, masked, by digits or the on-screen pad (like the PIN).

    Back deletes the last digit while there is one, then leaves.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "code:1"
        self.legend = {"red": "Back", "green": "Bind the account"}

    def on_kv_post(self, base_widget: Any) -> None:
        super().on_kv_post(base_widget)
        controller = self.app.controller
        for key in ("1", "2", "3", "4", "5", "6", "7", "8", "9", "delete", "0", "ok"):
            button = Factory.PadKey(focus_id=f"code:{key}", text=key)
            if key in ("delete", "ok"):
                label = "Delete" if key == "delete" else "Bind the account"
                _retranslate(button, label)
                action = (
                    controller.bind_code_delete if key == "delete" else controller.submit_bind_code
                )
                button.bind(on_press=lambda _b, act=action: act())
            else:
                button.bind(on_press=lambda _b, d=key: controller.bind_code_digit(d))
            self.ids.pad.add_widget(button)

    def activate(self) -> None:
        self.app.settings_vm.bind(bind_code_length=self._on_length)

    def deactivate(self) -> None:
        self.app.settings_vm.unbind(bind_code_length=self._on_length)

    def _on_length(self, _vm: Any, length: int) -> None:
        if length == 6:
            self.set_focus("code:ok")  # the next OK binds, not types the digit under the ring

    def on_digit(self, digit: str) -> bool:
        self.app.controller.bind_code_digit(digit)
        return True

    def on_back(self) -> bool:
        if self.app.settings_vm.bind_code_length:
            self.app.controller.bind_code_delete()
            return True
        return False

    def on_colour(self, colour: str) -> None:
        if colour == "red":
            self.app.controller.go_back()
        else:
            self.app.controller.submit_bind_code()
