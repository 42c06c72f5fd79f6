"""What the remote's actions do: runs services on the worker, fills view-models, navigates.

Everything here runs on the UI thread; service calls go through the worker and their results
come back through callbacks. A result that arrives after the user moved on (a payment left to
finish in the background) only updates data, never yanks the user to another screen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from kivy.clock import Clock

from dongle.errors import (
    DaemonUnavailable,
    DongleBusy,
    DongleRemoved,
    DongleTimeout,
    NoDongle,
)
from protocol.errors import DonglePinBlocked, DonglePinInvalid, DonglePinTokenExpired
from tvapp.format import (
    format_date,
    format_fingerprint,
    format_money,
    format_period,
    format_time,
    mask_name,
)
from tvapp.i18n import check_language
from tvapp.journal import BillAlreadyInProgress, PayingPaused
from tvapp.services.container import Services
from tvapp.services.dongle import DeviceUnverified
from tvapp.services.errors import (
    GatewayRefused,
    GatewayUnavailable,
    MalformedAnswer,
    ServiceError,
)
from tvapp.services.payments import (
    PaymentPending,
    PaymentProcessing,
    PaymentRefused,
    PreparedPayment,
)
from tvapp.services.records import (
    Account,
    Bill,
    CreditingAnswer,
    FundingSource,
    PaymentRecord,
    Receipt,
    Usage,
)
from tvapp.services.sign_check import DetailsMismatch
from tvapp.ui.confirmation import Confirmation, confirmation_for
from tvapp.ui.labels import UTILITY_ORDER
from tvapp.ui.prepaid_flow import PrepaidFlow
from tvapp.ui.qr import qr_modules
from tvapp.ui.translate import tr
from tvapp.ui.worker import Worker, on_main_thread

log = logging.getLogger("tvapp.ui")

# Screens left off the back stack: Back from what follows them must not land on them again.
TRANSIENT = frozenset(("progress", "state", "exit", "receipt"))
WAY_OUT_SECONDS = 10.0
# A payment that ends sooner goes from the confirm screen straight to its outcome: the UI
# stays still meanwhile, because drawing a progress screen nobody has time to read costs the
# payment itself a frame or more of CPU on a box that renders in software (bench/e2e.py).
PROGRESS_DELAY = 0.1
NOTICE_SECONDS = 10.0  # how long "payment for ... confirmed" stays on screen
DUE_SOON_DAYS = 7
PREFERENCES_FILE = "preferences.json"
BIND_MESSAGES = {
    "account_not_found": "No such account at this utility: check the number",
    "holder_name_mismatch": "The account holder is not this household",
    "account_already_bound": "This account is already bound",
    "bind_code_mismatch": "Wrong bind code",
    "too_many_attempts": "Too many wrong bind codes",
    "bind_code_not_issued": "This account has no bind code yet: ask telecom staff",
}
# Refusals whose message carries what to do next (tries left, when to retry): shown with it.
BIND_TELLS = frozenset(("bind_code_mismatch", "too_many_attempts"))
BIND_FALLBACK = "The account could not be bound:"
# Refusals of a new payment, before the PIN, that changing the way to pay can cure.
FUNDING_REFUSALS = frozenset(("insufficient_funds", "mandate_limit_exceeded"))
# States in which money was taken: only those have a crediting to ask the utility about.
MONEY_TAKEN = frozenset(("succeeded", "credited", "refunded"))
# The gateway's 5xx codes of 查询到账 that say the utility, not the gateway, is out of reach.
CREDITING_UNAVAILABLE = frozenset(("utility_unreachable", "utility_not_connected"))


@dataclass(frozen=True, slots=True)
class StartResult:
    household_name: str
    serial: str
    firmware: str
    state: str
    accounts: list[Account]
    confirmed: list[Receipt]  # journaled payments the gateway confirmed on the way
    funding: list[FundingSource]  # the household's ways to pay; [] when not known


class Controller(PrepaidFlow):
    def __init__(self, app: Any, services: Services) -> None:
        self.app = app
        self.services = services
        self.worker = Worker()
        self._stack: list[str] = []
        self._accounts: dict[str, Account] = {}
        self._bills: dict[str, Bill] = {}
        self._history: dict[str, PaymentRecord] = {}
        self._funding: list[FundingSource] = []
        self._funding_source: FundingSource | None = None  # the way to pay on the confirm screen
        self._pin = ""
        self._bind_code = ""
        self._prepared: PreparedPayment | None = None
        self._shown: Confirmation | None = None  # what the confirm screen draws and signs
        self._shown_bill: Bill | None = None
        self._flow = 0  # bumped when the user leaves a payment to finish in the background
        self._paying: int | None = None  # the flow whose signing and sending runs now
        self.progress_delay = PROGRESS_DELAY
        self._retry: Callable[[], None] = self.start
        self._ticker: Any = None
        self._subscription: Any = None
        self._resubmitting = False
        # Bumped when the dongle goes or changes: results loaded for the old household are
        # dropped instead of being shown under the new one.
        self._household = 0
        self._notice_timer: Any = None
        self._init_prepaid()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Check the dongle, open the session, resend journaled payments, load the accounts."""
        self.app.vm.loading = True
        self._retry = self.start
        self.worker.run(
            lambda: self._home_job(fresh_session=True),
            self._for_household(self._started),
            self._fail,
        )

    def _home_job(self, *, fresh_session: bool = False) -> StartResult:
        """The dongle plugged in now, its household's session (a new one if the dongle
        changed), journaled payments resent, the accounts."""
        status = self.services.dongle.status()
        if not status.present:
            raise NoDongle()
        session = self.services.session
        household = session.open() if fresh_session else session.ensure(status.serial)
        # At start only: afterwards the periodic resubmission does it, and a refresh must not
        # wait for a payment in progress.
        confirmed = self._resubmit_job() if fresh_session else []
        accounts = session.call(lambda gw: gw.accounts())
        return StartResult(
            household.name_masked,
            status.serial,
            status.firmware,
            status.state,
            accounts,
            confirmed,
            self._funding_job(),
        )

    def _funding_job(self) -> list[FundingSource]:
        """The household's ways to pay; [] (paying with the gateway's default, no balance shown)
        when the gateway cannot list them: paying must not depend on this list."""
        try:
            return self.services.session.call(lambda gw: gw.funding_sources())
        except (GatewayRefused, MalformedAnswer) as exc:
            log.warning("event=funding_sources_unknown error=%s", exc)
            return []

    def _for_household(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """``handler``, unless the dongle went or changed while its job ran."""
        household = self._household

        def deliver(result: Any) -> None:
            if household == self._household:
                handler(result)
            else:
                self.app.vm.loading = False
                log.info("event=stale_result_dropped")

        return deliver

    def _started(self, result: StartResult) -> None:
        self._home_loaded(result)
        if self.app.sm.current in ("state", "home") or not self._stack:
            self._stack = []
            self.show("home")

    def _home_loaded(self, result: StartResult) -> None:
        vm = self.app.vm
        vm.loading = False
        self._network_ok()
        vm.household_name = mask_name(result.household_name)
        vm.dongle_serial, vm.dongle_firmware = result.serial, result.firmware
        vm.dongle = "blocked" if result.state == "pin_blocked" else "present"
        self._show_accounts(result.accounts)
        self._show_funding(result.funding)
        self._count_pending()
        self._confirmed(result.confirmed)
        self._refresh_meters()

    def _show_funding(self, funding: list[FundingSource]) -> None:
        self._funding = funding
        wallet = next((f for f in funding if f.kind == "wallet"), None)
        self.app.home_vm.wallet = _balance(wallet)
        chosen = self._funding_source
        if chosen is not None:  # the confirm screen shows the balance as it is now
            fresh = next((f for f in funding if f.source_id == chosen.source_id), chosen)
            self.app.pay_vm.funding_balance = _balance(fresh)

    def watch_dongle(self) -> None:
        """Follow plug/unplug events from the daemon (delivered on its thread)."""
        try:
            self._subscription = self.services.dongle.subscribe(
                lambda event: on_main_thread(self._on_dongle_event, event)
            )
        except (DaemonUnavailable, OSError) as exc:
            log.warning("event=dongle_watch_failed error=%s", exc)

    def _on_dongle_event(self, event: Any) -> None:
        log.info("event=dongle_%s serial=%s state=%s", event.kind, event.serial, event.state)
        current = self.app.sm.current
        if event.kind == "removed":
            self._forget_household()
            self.app.vm.dongle = "absent"
            if current != "progress":  # a running payment reports it itself
                self._state("no_dongle")
        elif event.kind == "inserted":
            self.app.vm.dongle = "blocked" if event.state == "pin_blocked" else "present"
            swapped = event.serial != self.services.session.dongle_id
            if swapped:
                # Another household's dongle (or the removal went unseen): nothing shown so
                # far belongs to it.
                self._forget_household()
            showing_no_dongle = current == "state" and self.app.state_vm.kind == "no_dongle"
            if showing_no_dongle or (swapped and current != "progress"):
                self._stack = []
                self.start()
        elif event.kind in ("state_changed", "pin_blocked"):
            self._dongle_state_changed(event.state or "")

    def _dongle_state_changed(self, state: str) -> None:
        """E.g. blocked by wrong PINs, or unblocked by telecom staff with another client."""
        if state == "pin_blocked":
            self.app.vm.dongle = "blocked"
            return
        was_blocked = self.app.vm.dongle == "blocked"
        self.app.vm.dongle = "present"
        blocked_screen = self.app.sm.current == "state" and self.app.state_vm.kind == "pin_blocked"
        if was_blocked and blocked_screen:
            self.go_home()

    def _forget_household(self) -> None:
        """The dongle went away or changed: drop its session and everything of its household."""
        self._household += 1
        self.services.session.forget()
        self._accounts, self._bills, self._history = {}, {}, {}
        self._funding, self._funding_source = [], None
        self._prepared = None
        vm = self.app.vm
        vm.household_name = vm.dongle_serial = vm.dongle_firmware = ""
        home = self.app.home_vm
        home.accounts, home.banner, home.banner_count, home.wallet = [], "", 0, ""
        self.app.crediting_vm.payment_id = self.app.crediting_vm.state = ""
        self.app.history_vm.payments = []
        self._forget_prepaid()

    def start_resubmission(self, every: float) -> None:
        Clock.schedule_interval(lambda _dt: self.resubmit(), every)

    def resubmit(self) -> None:
        """Send journaled, unconfirmed payments (periodically, and when the network returns)."""
        if self._resubmitting or not self.services.journal.unconfirmed():
            return
        self._resubmitting = True

        def done(receipts: list[Receipt]) -> None:
            self._resubmitting = False
            self._count_pending()
            if receipts:
                self.app.vm.network = "ok"
                self._confirmed(receipts)
                self.refresh_home()
                if self.app.sm.current == "history":  # a processing payment resolved
                    self.open_history()

        def failed(exc: BaseException) -> None:
            self._resubmitting = False
            log.info("event=resubmit_failed error=%s", type(exc).__name__)

        self.worker.run(self._resubmit_job, done, failed)

    def _resubmit_job(self) -> list[Receipt]:
        return self.services.payments.resubmit()

    def _count_pending(self) -> None:
        self.app.vm.pending_payments = len(self.services.journal.unconfirmed())

    def _confirmed(self, receipts: list[Receipt]) -> None:
        """Tell the user, on whatever screen, that payments finished in the background."""
        if not receipts:
            return
        self.app.vm.notice_biller = "、".join(dict.fromkeys(r.biller_name for r in receipts))
        if self._notice_timer is not None:
            self._notice_timer.cancel()
        self._notice_timer = Clock.schedule_once(self._clear_notice, NOTICE_SECONDS)

    def _clear_notice(self, _dt: float = 0.0) -> None:
        self.app.vm.notice_biller = ""

    def shutdown(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        self.worker.shutdown()

    # -- navigation ------------------------------------------------------------------------

    def show(self, name: str) -> None:
        current = self.app.sm.current
        if current == name:
            self.app.sm.current_screen.refresh_focus()
            return
        if current not in TRANSIENT and current and (not self._stack or self._stack[-1] != current):
            self._stack.append(current)
        if name == "progress":
            self._start_ticker()
        elif current == "progress":
            self._stop_ticker()
        self.app.show_screen(name)

    def go_back(self) -> None:
        if self.app.sm.current == "home" and not self._stack:
            self.show("exit")
            return
        target = self._stack.pop() if self._stack else "home"
        if self.app.sm.current == "confirm":
            self._pin = ""
            self.app.pay_vm.pin_length = 0
        if self.app.sm.current == "progress":
            self._stop_ticker()
        self.app.show_screen(target)

    def go_home(self) -> None:
        self._stack = []
        if self.app.sm.current == "progress":
            self._stop_ticker()
        self._pin = ""
        self.app.pay_vm.pin_length = 0
        self.app.show_screen("home")
        self.refresh_home()

    def _state(self, kind: str, detail: str = "") -> None:
        self.app.state_vm.kind = kind
        self.app.state_vm.detail = detail
        if self.app.sm.current == "state":
            self.app.sm.current_screen.activate()
            self.app.sm.current_screen.refresh_focus()
        self.show("state")

    def state_action(self) -> None:
        from tvapp.ui.labels import STATES

        if STATES[self.app.state_vm.kind].button == "Home":
            self.go_home()
        else:
            self._retry()

    # -- failures --------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """Say what happened, in a full-screen state the user can act on."""
        self.app.vm.loading = False
        log.info("event=failure error=%s", type(exc).__name__)
        if isinstance(exc, DetailsMismatch):
            self._state("mismatch")
        elif isinstance(exc, DaemonUnavailable):
            self.app.vm.dongle = "daemon_down"
            self._state("daemon_down")
        elif isinstance(exc, NoDongle | DongleRemoved):
            self.app.vm.dongle = "absent"
            self._state("no_dongle")
        elif isinstance(exc, DongleBusy):
            self._state("dongle_busy")
        elif isinstance(exc, DeviceUnverified):
            self._state("unverified")
        elif isinstance(exc, DonglePinBlocked):
            self.app.vm.dongle = "blocked"
            self._state("pin_blocked")
        elif isinstance(exc, PaymentProcessing):
            self._count_pending()
            self._state("processing")
        elif isinstance(exc, PaymentPending):
            self.app.vm.network = "down"
            self._count_pending()
            self._state("pending")
        elif isinstance(exc, GatewayUnavailable):
            self.app.vm.network = "down"
            self._state("network_down")
        elif isinstance(exc, PaymentRefused | GatewayRefused):
            self._state("refused", exc.message)
        elif isinstance(exc, PayingPaused):
            self.show("journal")  # says why paying is paused on this box
        elif isinstance(exc, BillAlreadyInProgress | DongleTimeout | ServiceError):
            self._state("error", str(exc))
        else:
            log.error("event=unexpected_error error=%r", exc)
            self._state("error")

    def _network_ok(self) -> None:
        was_down = self.app.vm.network == "down"
        self.app.vm.network = "ok"
        if was_down:
            self.resubmit()

    # -- home ------------------------------------------------------------------------------

    def refresh_home(self) -> None:
        """Reload the household; a different dongle than the session's gets its own session."""
        self.app.vm.loading = True
        self._retry = self.refresh_home
        self.worker.run(self._home_job, self._for_household(self._refreshed), self._fail)

    def _refreshed(self, result: StartResult) -> None:
        if self.app.sm.current == "state":  # a successful retry ends the error screen
            self._stack = []
            self.app.show_screen("home")
        self._home_loaded(result)

    def _show_accounts(self, accounts: list[Account]) -> None:
        order = {u: i for i, u in enumerate(UTILITY_ORDER)}
        accounts = sorted(accounts, key=lambda a: (order.get(a.utility, 99), a.account_id))
        self._accounts = {a.account_id: a for a in accounts}
        soon = date.today() + timedelta(days=DUE_SOON_DAYS)
        overdue = [a for a in accounts if a.overdue and a.amount_due_fen > 0]
        due_soon = [
            a
            for a in accounts
            if a.amount_due_fen > 0 and a.due_date and date.fromisoformat(a.due_date) <= soon
        ]
        home = self.app.home_vm
        home.banner = "overdue" if overdue else ("due_soon" if due_soon else "")
        home.banner_count = len(overdue) if overdue else len(due_soon)
        home.accounts = [
            {
                "account_id": a.account_id,
                "utility": a.utility,
                "biller": a.biller_name,
                "account": a.account_no_masked,
                "amount": format_money(a.amount_due_fen, a.currency) if a.amount_due_fen else "",
                "due": format_date(a.due_date) if a.due_date and a.amount_due_fen else "",
                "overdue": a.overdue and a.amount_due_fen > 0,
            }
            for a in accounts
        ]

    # -- bills -----------------------------------------------------------------------------

    def open_account(self, account_id: str) -> None:
        account = self._accounts.get(account_id)
        if account is None:
            return
        vm = self.app.bills_vm
        vm.account_id, vm.utility = account_id, account.utility
        vm.biller, vm.account = account.biller_name, account.account_no_masked
        vm.bills, vm.usage, vm.usage_months, vm.unit = [], [], [], ""
        self.app.screen("bills").focus.focused = None
        self.show("bills")
        self._load_bills(account_id)

    def _load_bills(self, account_id: str) -> None:
        self.app.vm.loading = True
        self._retry = lambda: self.open_account(account_id)

        def job() -> tuple[list[Bill], Usage]:
            bills = self.services.session.call(lambda gw: gw.bills(account_id))
            return bills, self.services.session.call(lambda gw: gw.usage(account_id))

        self.worker.run(job, self._bills_loaded, self._fail)

    def _bills_loaded(self, result: tuple[list[Bill], Usage]) -> None:
        bills, usage = result
        self.app.vm.loading = False
        self._network_ok()
        self._bills = {b.bill_id: b for b in bills}
        by_month = {m.month: m.quantity for m in usage.months}
        vm = self.app.bills_vm
        vm.unit = usage.unit
        vm.usage = [m.quantity for m in usage.months]
        vm.usage_months = [m.month for m in usage.months]
        vm.bills = [
            {
                "bill_id": b.bill_id,
                "period": format_period(b.period),
                "usage": f"{by_month[b.period]:g} {usage.unit}" if b.period in by_month else "",
                "amount": format_money(b.amount_fen, b.currency),
                "due": format_date(b.due_date),
                "status": b.status,
                "overdue": b.overdue and b.status == "unpaid",
            }
            for b in bills
        ]

    # -- paying ----------------------------------------------------------------------------

    def choose_bill(self, bill_id: str) -> None:
        bill = self._bills.get(bill_id)
        if bill is None or bill.status != "unpaid":
            return
        default = next((f for f in self._funding if f.is_default), None)
        self._pay_bill(bill, default or (self._funding[0] if self._funding else None))

    def change_funding(self) -> None:
        """The next way to pay (yellow, or the button): the bill is prepared again with it."""
        prepared, chosen = self._prepared, self._funding_source
        bill = prepared.bill if prepared is not None else self._shown_bill
        if self.paying or len(self._funding) < 2 or bill is None or chosen is None:
            return
        ids = [f.source_id for f in self._funding]
        at = ids.index(chosen.source_id) if chosen.source_id in ids else -1
        self._pay_bill(bill, self._funding[(at + 1) % len(ids)])

    def _pay_bill(self, bill: Bill, source: FundingSource | None) -> None:
        pay = self.app.pay_vm
        shown = self._shown = self._purchase_confirmation(bill, source) or confirmation_for(
            bill, tr._, source
        )
        pay.title = shown.title
        pay.biller_label, pay.biller = shown.biller.label, shown.biller.value
        pay.account_label, pay.account = shown.account.label, shown.account.value
        pay.period_label, pay.period = shown.period.label, shown.period.value
        pay.amount_label, pay.amount = shown.amount.label, shown.amount.value
        funding = shown.funding
        pay.funding_label, pay.funding = (funding.label, funding.value) if funding else ("", "")
        pay.funding_choices = len(self._funding)
        pay.funding_balance = _balance(source)
        pay.funding_problem = pay.funding_problem_detail = ""
        pay.pin_length, pay.tries_left, pay.step = 0, -1, "preparing"
        self._pin = ""
        self._prepared = None
        self._shown_bill, self._funding_source = bill, source
        self._flow += 1
        flow = self._flow
        self._retry = lambda: self._pay_bill(bill, source)
        # With one way to pay the gateway's default is it: the payment is created as before.
        source_id = source.source_id if source is not None and len(self._funding) > 1 else None
        self.show("progress")
        prepare = self._purchase_preparer(bill) or self.services.payments.prepare
        self.worker.run(
            lambda: prepare(bill, source_id),
            lambda prepared: self._prepared_ready(flow, prepared),
            lambda exc: self._flow_failed(flow, exc),
        )

    def _prepared_ready(self, flow: int, prepared: PreparedPayment) -> None:
        if flow != self._flow:
            return
        self._network_ok()
        self._prepared = prepared
        if prepared.needs_pin:
            self.app.screen("confirm").focus.focused = None
            self.show("confirm")
        else:
            self._run_payment("")  # already signed: only resending remains, no PIN needed

    def pin_digit(self, digit: str) -> None:
        if self.app.pay_vm.funding_problem:
            return  # no PIN to type: the way to pay must change first
        if len(self._pin) < 6 and digit.isdigit() and len(digit) == 1:
            self._pin += digit
            self.app.pay_vm.pin_length = len(self._pin)

    def pin_delete(self) -> None:
        self._pin = self._pin[:-1]
        self.app.pay_vm.pin_length = len(self._pin)

    @property
    def paying(self) -> bool:
        """Whether the payment on screen is being signed or sent (keys wait for its outcome)."""
        return self._paying is not None and self._paying == self._flow

    def submit_pin(self) -> None:
        if len(self._pin) != 6 or self._prepared is None or self.paying:
            return
        pin, self._pin = self._pin, ""
        self._run_payment(pin)

    def _run_payment(self, pin: str) -> None:
        prepared, shown = self._prepared, self._shown
        assert prepared is not None and shown is not None
        flow = self._paying = self._flow
        self.app.pay_vm.step = "signing"
        if self.app.sm.current != "progress":
            Clock.schedule_once(lambda _dt: self._show_progress(flow), self.progress_delay)

        def step(name: str) -> None:
            on_main_thread(self._set_step, flow, name)

        self._retry = lambda: self._run_payment_again(prepared)

        def job() -> Receipt:
            receipt = self.services.payments.pay(prepared, pin, shown.text, step)
            qr_modules(receipt.qr)  # encoded here, off the UI thread, for the receipt screen
            return receipt

        self.worker.run(
            job,
            lambda receipt: self._paid(flow, receipt),
            lambda exc: self._flow_failed(flow, exc),
        )

    def _run_payment_again(self, prepared: PreparedPayment) -> None:
        """Retry after a fault: the same journaled payment (and way to pay), never a new one."""
        self._pay_bill(prepared.bill, self._funding_source)

    def _show_progress(self, flow: int) -> None:
        if self._paying == flow == self._flow:
            self.app.pay_vm.pin_length = 0
            self.show("progress")

    def _payment_over(self, flow: int) -> None:
        if self._paying == flow:
            self._paying = None
        if flow == self._flow:
            self.app.pay_vm.pin_length = 0

    def _set_step(self, flow: int, name: str) -> None:
        if flow == self._flow:
            self.app.pay_vm.step = name

    def _paid(self, flow: int, receipt: Receipt) -> None:
        self._payment_over(flow)
        self._network_ok()
        self._count_pending()
        if self._purchase_paid(receipt, on_screen=flow == self._flow):
            return
        if flow != self._flow:
            self._confirmed([receipt])  # the user left it to finish in the background
            self.refresh_home()
            return
        self._show_receipt(receipt)
        self._stack = ["home"]
        self.show("receipt")

    def _show_receipt(self, receipt: Receipt, record: PaymentRecord | None = None) -> None:
        """``record``: the payment as the gateway lists it now (from the history); a receipt
        just issued is of money taken, not yet credited."""
        pay = self.app.pay_vm
        pay.receipt_payment_id = receipt.payment_id
        pay.receipt_status = record.status if record is not None else "succeeded"
        pay.receipt_utility_ref = (record.utility_ref if record is not None else None) or ""
        pay.receipt_refund_reason = (record.refund_reason if record is not None else None) or ""
        pay.receipt_amount = format_money(receipt.amount_fen, receipt.currency)
        pay.receipt_biller, pay.receipt_account = receipt.biller_name, receipt.account_no_masked
        pay.receipt_period = format_period(receipt.period)
        pay.receipt_paid_at = format_time(receipt.paid_at)
        pay.receipt_no, pay.receipt_qr = receipt.receipt_no, receipt.qr
        pay.receipt_display_hash = (
            format_fingerprint(receipt.display_hash) if receipt.display_hash else ""
        )

    def _flow_failed(self, flow: int, exc: BaseException) -> None:
        self._payment_over(flow)
        self._count_pending()
        if flow != self._flow:
            return
        if isinstance(exc, DonglePinInvalid):
            self.app.pay_vm.tries_left = exc.retries
            self.app.screen("confirm").focus.focused = None
            self.show("confirm")
        elif isinstance(exc, DonglePinTokenExpired):
            self.show("confirm")
        elif isinstance(exc, PaymentRefused) and exc.code in FUNDING_REFUSALS:
            self._funding_refused(exc)
        else:
            self._fail(exc)

    def _funding_refused(self, exc: PaymentRefused) -> None:
        """Refused before the PIN (the journal entry is closed): say why on the confirm screen,
        where the household can choose another way to pay or leave."""
        pay = self.app.pay_vm
        pay.funding_problem = exc.code
        # A card's limits are the bank's numbers: the gateway's sentence carries them.
        pay.funding_problem_detail = exc.message if exc.code == "mandate_limit_exceeded" else ""
        self.app.screen("confirm").focus.focused = None
        self.show("confirm")
        self.worker.run(self._funding_job, self._for_household(self._show_funding), _ignore)

    def leave_progress(self) -> None:
        """The way out after a long wait: the journal finishes the payment in the background."""
        if not self.app.pay_vm.way_out:
            return
        self._flow += 1
        self.go_home()

    def _start_ticker(self) -> None:
        self._stop_ticker()
        self.app.pay_vm.elapsed = 0.0
        self.app.pay_vm.way_out = False
        self._ticker = Clock.schedule_interval(self._tick, 0.25)

    def _tick(self, dt: float) -> None:
        pay = self.app.pay_vm
        pay.elapsed += dt
        pay.way_out = pay.elapsed >= WAY_OUT_SECONDS

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    # -- history ---------------------------------------------------------------------------

    def open_history(self) -> None:
        self.app.history_vm.payments = []
        self.app.screen("history").focus.focused = None
        self.show("history")
        self.app.vm.loading = True
        self._retry = self.open_history

        def job() -> list[PaymentRecord] | None:
            try:
                return self.services.session.call(lambda gw: gw.payments(50))
            except GatewayUnavailable:
                return None  # offline: the journal still knows this box's payments

        self.worker.run(job, self._history_loaded, self._fail)

    def _history_loaded(self, records: list[PaymentRecord] | None) -> None:
        self.app.vm.loading = False
        pending = {e.payment_id: e for e in self.services.journal.unconfirmed()}
        rows = []
        self._history = {}
        if records is None:
            self.app.vm.network = "down"
            records = []
        else:
            self._network_ok()
        for record in records:
            # Journaled and not yet seen by the gateway: waiting for the network. Once the
            # gateway has it (e.g. processing at the bank), its state is the news.
            journaled = record.payment_id in pending
            waiting = journaled and record.status == "requires_authorization"
            self._history[record.payment_id] = record
            rows.append(_history_row(record, "pending" if waiting else record.status))
        shown = {r["key"] for r in rows}
        for entry in pending.values():
            if entry.payment_id not in shown:
                rows.insert(
                    0,
                    {
                        "key": entry.payment_id,
                        "when": format_time(entry.created_at),
                        "title": entry.sign_fields.get("biller", "") if entry.sign_fields else "",
                        "period": "",
                        "amount": format_money(entry.amount_fen, entry.currency),
                        "status": "pending",
                        "utility_ref": "",
                        "reason": "",
                    },
                )
        self.app.history_vm.payments = rows

    def show_receipt(self, payment_id: str) -> None:
        record = self._history.get(payment_id)
        if record is None or record.receipt is None:
            return
        self._show_receipt(record.receipt, record)
        self.show("receipt")

    # -- 查询到账 --------------------------------------------------------------------------

    def check_crediting(self, payment_id: str) -> None:
        """Ask the utility, through the gateway, whether it credited the payment."""
        vm = self.app.crediting_vm
        if not payment_id or (vm.state == "asking" and vm.payment_id == payment_id):
            return
        vm.payment_id, vm.utility_ref, vm.reason = payment_id, "", ""
        known = self._history.get(payment_id)
        if known is not None and known.status not in MONEY_TAKEN:
            vm.state = "not_taken"
            return
        vm.state = "asking"

        def job() -> CreditingAnswer:
            return self.services.session.call(lambda gw: gw.crediting_check(payment_id))

        self.worker.run(
            job,
            self._for_household(self._crediting_answered),
            lambda exc: self._crediting_failed(payment_id, exc),
        )

    def _crediting_answered(self, answer: CreditingAnswer) -> None:
        record = answer.payment
        vm = self.app.crediting_vm
        if vm.payment_id != record.payment_id:
            return  # another payment was asked about since
        self._network_ok()
        vm.state = answer.utility_says
        vm.utility_ref = answer.utility_ref or record.utility_ref or ""
        vm.reason = answer.reason or record.refund_reason or ""
        # What the gateway recorded from the answer shows everywhere the payment does.
        self._history[record.payment_id] = record
        history = self.app.history_vm
        history.payments = [
            _history_row(record, record.status) if row["key"] == record.payment_id else row
            for row in history.payments
        ]
        pay = self.app.pay_vm
        if pay.receipt_payment_id == record.payment_id:
            pay.receipt_status = record.status
            pay.receipt_utility_ref = record.utility_ref or ""
            pay.receipt_refund_reason = record.refund_reason or ""

    def _crediting_failed(self, payment_id: str, exc: BaseException) -> None:
        vm = self.app.crediting_vm
        if vm.payment_id != payment_id:
            return
        if isinstance(exc, GatewayUnavailable):
            if exc.code in CREDITING_UNAVAILABLE:
                vm.state = exc.code
            else:
                self.app.vm.network = "down"
                vm.state = "network_down"
        elif isinstance(exc, GatewayRefused) and exc.code == "payment_not_taken":
            vm.state = "not_taken"
        else:
            log.info("event=crediting_check_failed error=%s", type(exc).__name__)
            vm.state = "error"

    # -- settings --------------------------------------------------------------------------

    def open_settings(self) -> None:
        self.app.settings_vm.bind_result = ""
        self.app.settings_vm.bind_detail = ""
        self.show("settings")

    def switch_language(self, language: str) -> None:
        check_language(language)
        tr.switch(language)
        self.app.vm.language = language
        path = self.app.settings.state_path / PREFERENCES_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"language": language}))
        except OSError as exc:
            log.warning("event=preferences_not_saved error=%s", exc.strerror)
        # Texts changed length: focus rectangles moved.
        Clock.schedule_once(lambda _dt: self.app.sm.current_screen.refresh_focus(), 0)

    def bind_digit(self, digit: str) -> None:
        vm = self.app.settings_vm
        if len(vm.bind_number) < 32:
            vm.bind_number += digit
            vm.bind_result = ""

    def bind_delete(self) -> None:
        self.app.settings_vm.bind_number = self.app.settings_vm.bind_number[:-1]

    def bind_account(self) -> None:
        """With a number typed, ask for the bind code printed on the bill."""
        vm = self.app.settings_vm
        vm.bind_detail = ""
        if not vm.bind_number:
            vm.bind_result = "Type the account number first"
            return
        vm.bind_result = ""
        self._bind_code = ""
        vm.bind_code_length = 0
        self.show("bindcode")

    def bind_code_digit(self, digit: str) -> None:
        if len(self._bind_code) < 6 and digit.isdigit() and len(digit) == 1:
            self._bind_code += digit
            self.app.settings_vm.bind_code_length = len(self._bind_code)

    def bind_code_delete(self) -> None:
        self._bind_code = self._bind_code[:-1]
        self.app.settings_vm.bind_code_length = len(self._bind_code)

    def submit_bind_code(self) -> None:
        vm = self.app.settings_vm
        if len(self._bind_code) != 6 or vm.bind_result == "Binding...":
            return
        code, self._bind_code = self._bind_code, ""
        vm.bind_code_length = 0
        vm.bind_result, vm.bind_detail = "Binding...", ""
        utility, number = vm.bind_utility, vm.bind_number
        # A box configured with the household's name still binds accounts the utility has not
        # issued a code for yet.
        holder = self.app.settings.holder_name

        def job() -> Account:
            try:
                return self.services.session.call(
                    lambda gw: gw.bind_account(utility, number, bind_code=code)
                )
            except GatewayRefused as exc:
                if exc.code != "bind_code_not_issued" or not holder:
                    raise
            return self.services.session.call(
                lambda gw: gw.bind_account(utility, number, holder_name=holder)
            )

        self.worker.run(job, self._bound, self._bind_failed)

    def _bound(self, _account: Account) -> None:
        self.app.settings_vm.bind_result = "Account bound"
        self.app.settings_vm.bind_number = ""
        if self.app.sm.current == "bindcode":
            self.go_back()
        self.refresh_home()

    def _bind_failed(self, exc: BaseException) -> None:
        vm = self.app.settings_vm
        if isinstance(exc, GatewayRefused):
            vm.bind_result = BIND_MESSAGES.get(exc.code, BIND_FALLBACK)
            shown = exc.code not in BIND_MESSAGES or exc.code in BIND_TELLS
            vm.bind_detail = exc.message if shown else ""
        elif isinstance(exc, GatewayUnavailable):
            self.app.vm.network = "down"
            vm.bind_result = "No connection to the payment service"
        else:
            vm.bind_result = ""  # not "Binding..." forever: a new try must be possible
            self._fail(exc)


def _balance(source: FundingSource | None) -> str:
    """A wallet's balance, formatted; "" for a card or an unknown source."""
    if source is None or source.balance_fen is None or source.currency is None:
        return ""
    return format_money(source.balance_fen, source.currency)


def _history_row(record: PaymentRecord, status: str) -> dict[str, Any]:
    return {
        "key": record.payment_id,
        "when": format_time(record.created_at),
        "title": record.biller_name,
        "period": format_period(record.period),
        "amount": format_money(record.amount_fen, record.currency),
        "status": status,
        "utility_ref": record.utility_ref or "",
        "reason": record.refund_reason or "",
    }


def _ignore(_exc: BaseException) -> None:
    """A refresh whose failure changes nothing shown (the last known values stay)."""
