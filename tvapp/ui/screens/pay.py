"""The payment screens: confirm with the PIN, progress, receipt."""

from __future__ import annotations

from typing import Any

from tvapp.ui.qr import qr_texture
from tvapp.ui.screens.base import TvScreen


class ConfirmScreen(TvScreen):
    """Biller, account, period and amount in large type; the PIN by digits or the on-screen pad.

    Back deletes the last digit while there is one (what TV PIN pads do), then leaves.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "pad:1"
        self.legend = {"red": "Cancel", "green": "Pay"}

    def activate(self) -> None:
        pay = self.app.pay_vm
        pay.bind(pin_length=self._on_pin_length)
        # Yellow changes the way to pay only where there is a choice; a refusal before the PIN
        # (the wallet holds too little) leaves nothing to pay with the PIN until it is changed.
        self.legend = {
            **({"red": "Cancel"} if pay.funding_problem else {"red": "Cancel", "green": "Pay"}),
            **({"yellow": "Change how to pay"} if pay.funding_choices > 1 else {}),
        }
        self.default_focus = (
            "funding"
            if pay.funding_problem and pay.funding_choices > 1
            else ("cancel" if pay.funding_problem else "pad:1")
        )
        self.focus.default = self.default_focus

    def deactivate(self) -> None:
        self.app.pay_vm.unbind(pin_length=self._on_pin_length)

    def handle(self, action: str) -> bool:
        if self.app.controller.paying:
            return True  # the PIN was sent: its outcome replaces this screen in a moment
        return super().handle(action)

    def _on_pin_length(self, _vm: Any, length: int) -> None:
        if length == 6:
            # The next OK must pay, not type the digit under the focus ring.
            self.set_focus("pad:ok")

    def on_digit(self, digit: str) -> bool:
        self.app.controller.pin_digit(digit)
        return True

    def on_back(self) -> bool:
        if self.app.pay_vm.pin_length:
            self.app.controller.pin_delete()
            return True
        return False

    def on_colour(self, colour: str) -> None:
        if colour == "red":
            self.app.controller.go_back()
        elif colour == "yellow":
            self.app.controller.change_funding()
        else:
            self.app.controller.submit_pin()


class ProgressScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "leave"

    def activate(self) -> None:
        self.app.pay_vm.bind(way_out=self._on_way_out)

    def deactivate(self) -> None:
        self.app.pay_vm.unbind(way_out=self._on_way_out)

    def _on_way_out(self, *_args: Any) -> None:
        self.refresh_focus()

    def on_back(self) -> bool:
        # Leaving is allowed only once the way out is offered; before that Back does nothing
        # rather than abandoning a dongle mid-signature.
        if self.app.pay_vm.way_out:
            self.app.controller.leave_progress()
        return True


class ReceiptScreen(TvScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_focus = "done"
        self.legend = {"red": "History", "yellow": "Check crediting"}

    def activate(self) -> None:
        qr = self.app.pay_vm.receipt_qr
        self.ids.qr.texture = qr_texture(qr) if qr else None
        self.focus.focused = None  # every receipt starts on Done

    def on_colour(self, colour: str) -> None:
        if colour == "yellow":
            self.app.controller.check_crediting(self.app.pay_vm.receipt_payment_id)
        else:
            self.app.controller.open_history()
