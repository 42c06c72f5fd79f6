"""What the remote's actions do in 买电: the meters, the amount, the card, the token.

A part of the controller (``Controller`` inherits it): it runs on the UI thread, sends service
calls to the controller's worker and fills ``app.prepaid_vm``. A purchase is paid through the
controller's own confirm screen, PIN and progress (the hooks in ``_pay_bill`` and ``_paid``), so
it is journaled, signed and resent exactly as a bill payment is; what follows the payment is
here: the card written (补写卡 whenever it did not finish), the token shown, or, for a remote
meter, the ordinary receipt.

Back never loses a paid purchase: the purchase is in the fulfilment journal before any screen
about it is shown, Home says how many are paid and not on their meter yet, and the buy screen
of that meter blocks a new purchase and says what to do.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from typing import Any

from kivy.clock import Clock

from tvapp.format import format_money, format_time
from tvapp.fulfilments import FILE_NAME, Fulfilment, FulfilmentJournal
from tvapp.services.card_writer import (
    STEP_READING,
    CardUnreadable,
    CardWriteIncomplete,
    CardWriter,
    NoCard,
    NothingToWrite,
)
from tvapp.services.errors import GatewayRefused, GatewayUnavailable, MalformedAnswer
from tvapp.services.prepaid import Meter, PrepaidApi, Quote
from tvapp.services.prepaid_rules import amount_refusal, room_fen
from tvapp.services.purchases import PurchaseOrder, Purchases, is_purchase
from tvapp.services.records import Bill, FundingSource, Receipt
from tvapp.ui.confirmation import Confirmation
from tvapp.ui.purchase_confirmation import format_energy, format_price, purchase_confirmation
from tvapp.ui.translate import tr
from tvapp.ui.worker import on_main_thread

log = logging.getLogger("tvapp.ui.prepaid")

MAX_DIGITS = 6  # whole yuan typed on the remote: up to ¥999,999
ESPEAK = "espeak-ng"
# Tokens are spoken a digit at a time, in Mandarin, with a pause between the groups.
SPOKEN_DIGITS = "零一二三四五六七八九"


def group_token(token: str) -> str:
    """``"12345678901234567890"`` -> ``"1234 5678 9012 3456 7890"``: read and typed in fours."""
    return " ".join(token[i : i + 4] for i in range(0, len(token), 4))


class PrepaidFlow:
    """Mixed into ``Controller``: its attributes are the controller's."""

    app: Any
    services: Any
    worker: Any
    _funding: list[FundingSource]

    def _init_prepaid(self) -> None:
        self._fulfilments = FulfilmentJournal(self.app.settings.state_path / FILE_NAME)
        self._purchases = Purchases(self.services.session, self.services.journal, self._fulfilments)
        self._card_writer = CardWriter(
            self.services.session, self.services.dongle.client, self._purchases, self._fulfilments
        )
        self._meters: dict[str, Meter] = {}
        self._meter: Meter | None = None  # the meter on the buy screen
        self._quote: Quote | None = None  # the quote of the amount shown
        self._order: PurchaseOrder | None = None  # what the confirm screen is for
        self._quote_asked = 0  # bumped per amount: an older quote's answer is dropped
        self._meters_again = False  # a meter refresh was asked for while one ran
        self.app.prepaid_vm.loading = False
        self._write_ticker: Any = None
        self._speaker: subprocess.Popen[bytes] | None = None

    # -- hooks of the payment flow ---------------------------------------------------------

    def _purchase_confirmation(
        self, bill: Bill, source: FundingSource | None
    ) -> Confirmation | None:
        order = self._order
        if order is None or not is_purchase(bill) or bill.bill_id != order.key:
            return None
        return purchase_confirmation(order, tr._, source)

    def _purchase_preparer(self, bill: Bill) -> Any:
        """The purchase's own ``prepare`` for the controller's payment flow; None for a bill."""
        order = self._order
        if order is None or not is_purchase(bill) or bill.bill_id != order.key:
            return None
        return lambda _bill, source_id: self._purchases.prepare(order, source_id)

    def _purchase_paid(self, receipt: Receipt, on_screen: bool) -> bool:
        """After a payment's receipt: True when the purchase's fulfilment takes the screen."""
        made = self._purchases.paid(receipt.payment_id)
        if made is None:
            return False
        log.info("event=purchase_paid purchase_id=%s kind=%s", made.purchase_id, made.kind)
        self._order = None
        self._refresh_meters()
        if not on_screen or made.kind == "remote":
            return False  # a remote meter's receipt is the bill's; the utility credits it
        self._go_prepaid(made.kind)
        if made.kind == "token":
            self._fetch_token(made.purchase_id)
        else:
            self.write_card()
        return True

    def _go_prepaid(self, screen_kind: str) -> None:
        """Home under the fulfilment screen: Back from it lands on Home, never on the PIN."""
        self.go_home()
        self.show("token" if screen_kind == "token" else "cardwrite")

    def _forget_prepaid(self) -> None:
        self._meters, self._meter, self._quote, self._order = {}, None, None, None
        vm = self.app.prepaid_vm
        # A refresh running for the household gone is dropped when it ends: the next may start.
        vm.meters, vm.low_meter, vm.unwritten, vm.loading = [], "", 0, False

    # -- meters ----------------------------------------------------------------------------

    def open_meters(self) -> None:
        self.app.screen("meters").focus.focused = None
        self.show("meters")
        self._refresh_meters()

    def _refresh_meters(self) -> None:
        """The household's meters and this box's unfinished purchases, for Home and 买电.

        One refresh at a time, and one more after it when asked meanwhile: the gateway asks the
        utility for remote balances (seconds when it is slow), and refreshes piling up on the
        worker would hold up the payments that share it."""
        if self.app.prepaid_vm.loading:
            self._meters_again = True
            return
        self.app.prepaid_vm.loading = True
        self._meters_again = False

        def job() -> tuple[list[Meter], list[Fulfilment]]:
            meters = self.services.session.call(PrepaidApi.meters)
            return meters, self._purchases.sync()

        def failed(exc: BaseException) -> None:
            log.info("event=meters_unknown error=%s", type(exc).__name__)
            self._count_unwritten(self._fulfilments.unfinished())
            self._meters_over()

        self.worker.run(job, self._for_household(self._meters_loaded), failed)

    def _meters_over(self) -> None:
        self.app.prepaid_vm.loading = False
        if self._meters_again:
            self._refresh_meters()

    def _meters_loaded(self, result: tuple[list[Meter], list[Fulfilment]]) -> None:
        meters, unfinished = result
        vm = self.app.prepaid_vm
        self._meters = {m.meter_id: m for m in meters}
        unwritten = {f.meter_id for f in unfinished if f.state != "created"}
        vm.meters = [
            {
                "meter_id": m.meter_id,
                "kind": m.kind,
                "biller": m.biller_name,
                "meter_no": m.meter_no_masked,
                "balance": format_money(m.balance.amount_fen, m.currency) if m.balance else "",
                "days_left": m.balance.days_left
                if m.balance and m.balance.days_left is not None
                else -1,
                "low": bool(m.balance and m.balance.low),
                "pending": bool(m.pending_purchase_id) or m.meter_id in unwritten,
            }
            for m in meters
        ]
        low = next((m for m in meters if m.kind == "remote" and m.balance and m.balance.low), None)
        vm.low_meter = low.meter_no_masked if low else ""
        if low is not None and low.balance is not None:
            vm.low_balance = format_money(low.balance.amount_fen, low.currency)
            vm.low_days = -1 if low.balance.days_left is None else low.balance.days_left
        self._count_unwritten(unfinished)
        if self.app.sm.current == "buy" and self._meter is not None:
            fresh = self._meters.get(self._meter.meter_id)
            if fresh is not None:
                self._meter = fresh
                self.app.prepaid_vm.pending = self._pending_of(fresh)
        self._meters_over()

    def _count_unwritten(self, unfinished: list[Fulfilment]) -> None:
        self.app.prepaid_vm.unwritten = sum(1 for f in unfinished if f.state != "created")

    def _pending_of(self, meter: Meter) -> str:
        """The kind of the meter's purchase paid and not on the meter yet ("" = none)."""
        paid_here = any(
            f.meter_id == meter.meter_id and f.state != "created"
            for f in self._fulfilments.unfinished()
        )
        return meter.kind if paid_here or meter.pending_purchase_id else ""

    # -- the amount ------------------------------------------------------------------------

    def choose_meter(self, meter_id: str) -> None:
        meter = self._meters.get(meter_id)
        if meter is None:
            return
        self._meter, self._quote = meter, None
        vm = self.app.prepaid_vm
        vm.kind, vm.biller, vm.meter_no = meter.kind, meter.biller_name, meter.meter_no_masked
        vm.balance = format_money(meter.balance.amount_fen, meter.currency) if meter.balance else ""
        vm.presets = [
            {"fen": fen, "label": format_money(fen, meter.currency)}
            for fen in meter.rules.presets_fen
        ]
        rules = meter.rules
        vm.rule_min = format_money(rules.min_fen, meter.currency)
        vm.rule_max = format_money(rules.max_purchase_fen, meter.currency)
        vm.rule_multiple = format_money(rules.multiple_of_fen, meter.currency)
        balance = meter.balance.amount_fen if meter.balance else None
        vm.rule_room = format_money(room_fen(rules, balance), meter.currency)
        vm.pending = self._pending_of(meter)
        vm.card = ""
        self._set_amount("")
        self.app.screen("buy").focus.focused = None
        self.show("buy")

    def buy_preset(self, fen: int) -> None:
        self._set_amount(str(fen // 100))

    def buy_digit(self, digit: str) -> None:
        digits = self.app.prepaid_vm.digits
        if digit.isdigit() and len(digit) == 1 and len(digits) < MAX_DIGITS:
            self._set_amount((digits + digit).lstrip("0"))

    def buy_delete(self) -> None:
        self._set_amount(self.app.prepaid_vm.digits[:-1])

    def _set_amount(self, digits: str) -> None:
        meter = self._meter
        vm = self.app.prepaid_vm
        vm.digits, vm.energy, vm.tiers, vm.quote_detail = digits, "", [], ""
        vm.card = ""
        self._quote = None
        self._quote_asked += 1
        if meter is None or not digits:
            vm.amount, vm.refusal, vm.quote_state = "", "", ""
            return
        amount = int(digits) * 100
        vm.amount = format_money(amount, meter.currency)
        balance = meter.balance.amount_fen if meter.balance else None
        vm.refusal = amount_refusal(meter.rules, amount, balance)
        if vm.refusal:
            vm.quote_state = ""
            return
        vm.quote_state = "asking"
        asked = self._quote_asked

        def job() -> Quote:
            return self.services.session.call(
                lambda gw: PrepaidApi.quote(gw, meter.meter_id, amount, meter.currency)
            )

        self.worker.run(
            job,
            lambda quote: self._quoted(asked, quote),
            lambda exc: self._quote_failed(asked, exc),
        )

    def _quoted(self, asked: int, quote: Quote) -> None:
        if asked != self._quote_asked:
            return  # the household typed on since
        self._quote = quote
        vm = self.app.prepaid_vm
        vm.quote_state = "ready"
        vm.energy = format_energy(quote.energy_wh)
        vm.tiers = [
            {
                "tier": t.tier,
                "energy": format_energy(t.energy_wh),
                "price": format_price(t.price_milli_fen_per_kwh),
            }
            for t in quote.tiers
        ]
        Clock.schedule_once(lambda _dt: self.app.sm.current_screen.refresh_focus(), 0)

    def _quote_failed(self, asked: int, exc: BaseException) -> None:
        if asked != self._quote_asked:
            return
        vm = self.app.prepaid_vm
        if isinstance(exc, GatewayRefused):
            vm.quote_state, vm.quote_detail = "refused", exc.message
        else:
            log.info("event=quote_failed error=%s", type(exc).__name__)
            vm.quote_state = "failed"

    @property
    def can_buy(self) -> bool:
        vm = self.app.prepaid_vm
        return self._quote is not None and not vm.pending and vm.card != "reading_card"

    def buy_next(self) -> None:
        """To the confirm screen and the PIN: for a card meter, the card is read first (the
        gateway checks it before the PIN)."""
        meter, quote = self._meter, self._quote
        if meter is None or quote is None or not self.can_buy:
            return
        if meter.kind != "card":
            self._confirm_purchase(PurchaseOrder(meter, quote))
            return
        vm = self.app.prepaid_vm
        vm.card = "reading_card"

        def read_failed(exc: BaseException) -> None:
            if isinstance(exc, NoCard | CardUnreadable):
                vm.card = "no_card" if isinstance(exc, NoCard) else "unreadable"
            else:
                vm.card = ""
                self._fail(exc)

        self.worker.run(
            self._card_writer.read,
            lambda card: self._card_read(meter, quote, card),
            read_failed,
        )

    def _card_read(self, meter: Meter, quote: Quote, card: Any) -> None:
        self.app.prepaid_vm.card = ""
        if self._meter is meter and self._quote is quote and self.app.sm.current == "buy":
            self._confirm_purchase(PurchaseOrder(meter, quote, card))

    def _confirm_purchase(self, order: PurchaseOrder) -> None:
        self._order = order
        default = next((f for f in self._funding if f.is_default), None)
        source = default or (self._funding[0] if self._funding else None)
        self._pay_bill(order.bill(), source)

    def resume_purchase(self) -> None:
        """What the buy screen offers while the meter's last purchase is not on it yet."""
        pending = self.app.prepaid_vm.pending
        if pending == "card":
            self.write_card()
        elif pending == "token":
            self.open_pending_token()
        else:
            self.go_back()

    # -- the card --------------------------------------------------------------------------

    def write_card(self) -> None:
        """Write the card in the slot (after payment, and 补写卡 whenever it did not finish)."""
        vm = self.app.prepaid_vm
        if vm.write_outcome == "" and self._write_ticker is not None:
            return  # writing now
        vm.write_step, vm.write_outcome, vm.write_detail, vm.write_elapsed = (
            STEP_READING,
            "",
            "",
            0.0,
        )
        if self.app.sm.current != "cardwrite":
            self._go_prepaid("card")
        self._write_ticker = Clock.schedule_interval(self._write_tick, 0.25)

        def step(name: str) -> None:
            on_main_thread(setattr, vm, "write_step", name)

        self.worker.run(
            lambda: self._card_writer.write(step), self._card_written, self._card_not_written
        )

    def _write_tick(self, dt: float) -> None:
        self.app.prepaid_vm.write_elapsed += dt

    def _write_over(self, outcome: str, detail: str = "") -> None:
        if self._write_ticker is not None:
            self._write_ticker.cancel()
            self._write_ticker = None
        vm = self.app.prepaid_vm
        vm.write_outcome, vm.write_detail = outcome, detail
        self._refresh_meters()
        if self.app.sm.current == "cardwrite":
            self.app.sm.current_screen.focus.focused = None
            Clock.schedule_once(lambda _dt: self.app.sm.current_screen.refresh_focus(), 0)

    def _card_written(self, purchase_id: str) -> None:
        log.info("event=card_purchase_written purchase_id=%s", purchase_id)
        self._write_over("written")

    def _card_not_written(self, exc: BaseException) -> None:
        if isinstance(exc, CardWriteIncomplete):
            self._write_over("incomplete")
        elif isinstance(exc, NoCard):
            self._write_over("no_card")
        elif isinstance(exc, CardUnreadable):
            self._write_over("unreadable")
        elif isinstance(exc, NothingToWrite):
            self._write_over("nothing", exc.reason)
        elif isinstance(exc, GatewayUnavailable):
            self.app.vm.network = "down"
            self._write_over("network")
        elif isinstance(exc, GatewayRefused | MalformedAnswer):
            self._write_over("nothing", str(exc))
        else:
            log.error("event=card_write_failed error=%r", exc)
            self._write_over("error", str(exc))

    @property
    def writing_card(self) -> bool:
        return self._write_ticker is not None

    # -- the token -------------------------------------------------------------------------

    def open_pending_token(self) -> None:
        """The token of this meter's purchase that was paid and not shown (or not typed yet)."""
        meter = self._meter
        if meter is None or meter.kind != "token":
            return
        made = next(
            (f for f in self._fulfilments.unfinished() if f.meter_id == meter.meter_id), None
        )
        purchase_id = made.purchase_id if made else meter.pending_purchase_id
        if purchase_id:
            self._go_prepaid("token")
            self._fetch_token(purchase_id)
        else:
            self.open_tokens()

    def open_tokens(self) -> None:
        """The token history, newest first, as recorded on this box."""
        vm = self.app.prepaid_vm
        vm.token, vm.token_state, vm.speech = "", "history", ""
        self._show_history()
        self._go_prepaid("token")

    def _fetch_token(self, purchase_id: str) -> None:
        vm = self.app.prepaid_vm
        vm.token, vm.token_state, vm.speech = "", "fetching", ""
        self.worker.run(
            lambda: self._purchases.token(purchase_id),
            lambda token: self._token_fetched(purchase_id, token),
            self._token_failed,
        )

    def _token_fetched(self, purchase_id: str, token: str) -> None:
        made = self._fulfilments.get(purchase_id)
        vm = self.app.prepaid_vm
        vm.token, vm.token_state = group_token(token), "shown"
        if made is not None:
            vm.token_amount = format_money(made.amount_fen, made.currency)
            vm.token_energy = format_energy(made.energy_wh)
        self._show_history()
        self._refresh_meters()

    def _token_failed(self, exc: BaseException) -> None:
        log.info("event=token_failed error=%s", type(exc).__name__)
        self.app.prepaid_vm.token_state = "failed"
        if isinstance(exc, GatewayUnavailable):
            self.app.vm.network = "down"

    def _show_history(self) -> None:
        tokens = self._fulfilments.tokens()
        self.app.prepaid_vm.token_history = [
            {
                "when": format_time(f.created_at),
                "amount": format_money(f.amount_fen, f.currency),
                "energy": format_energy(f.energy_wh),
                "token": group_token(f.token or ""),
            }
            for f in tokens
        ]

    def speak_token(self) -> None:
        """Read the token out (Mandarin, a digit at a time) with espeak-ng, when installed."""
        vm = self.app.prepaid_vm
        program = shutil.which(ESPEAK)
        if program is None:
            vm.speech = "missing"
            return
        if not vm.token or (self._speaker is not None and self._speaker.poll() is None):
            return
        words = "，".join(
            "".join(SPOKEN_DIGITS[int(d)] for d in group) for group in vm.token.split()
        )
        # Its own process, not waited for: speaking takes seconds and the UI must not stop.
        self._speaker = subprocess.Popen(
            [program, "-v", "cmn", words], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        vm.speech = "speaking"
