"""View-models: what the screens show, as Kivy properties, changed only on the main thread.

Screens bind to these and to nothing else; the controller fills them from service results.
Values are ready to show (money formatted, numbers masked) except texts that depend on the
language, which are message ids the kv rules translate.
"""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    StringProperty,
)


class AppVM(EventDispatcher):
    language = StringProperty("zh_CN")
    # unknown | present | absent | blocked | daemon_down
    dongle = StringProperty("unknown")
    dongle_serial = StringProperty("")
    dongle_firmware = StringProperty("")
    network = StringProperty("unknown")  # unknown | ok | down
    household_name = StringProperty("")
    pending_payments = NumericProperty(0)
    loading = BooleanProperty(False)
    # Billers of payments the gateway just confirmed in the background ("" = no notice shown).
    notice_biller = StringProperty("")
    # What each colour key does on the current screen (message ids; "" = nothing).
    legend_red = StringProperty("")
    legend_green = StringProperty("")
    legend_yellow = StringProperty("")
    legend_blue = StringProperty("")
    gateway_url = StringProperty("")
    version = StringProperty("")


class HomeVM(EventDispatcher):
    accounts = ListProperty([])  # dicts: account_id, utility, biller, account, amount, due, overdue
    banner = StringProperty("")  # "" | overdue | due_soon
    banner_count = NumericProperty(0)
    wallet = StringProperty("")  # the wallet's balance, formatted; "" when not known


class BillsVM(EventDispatcher):
    account_id = StringProperty("")
    utility = StringProperty("")
    biller = StringProperty("")
    account = StringProperty("")  # masked number
    bills = ListProperty([])  # dicts: bill_id, period, usage, amount, due, status, overdue
    usage = ListProperty([])  # quantities, oldest first
    usage_months = ListProperty([])
    unit = StringProperty("")


class PayVM(EventDispatcher):
    # The confirm screen, labels included and already translated: tvapp/ui/confirmation.py makes
    # them and the text the dongle signs the hash of in one go, so both say the same.
    title = StringProperty("")
    biller_label = StringProperty("")
    biller = StringProperty("")
    account_label = StringProperty("")
    account = StringProperty("")
    period_label = StringProperty("")
    period = StringProperty("")
    amount_label = StringProperty("")
    amount = StringProperty("")
    funding_label = StringProperty("")  # "" when the household's ways to pay are not known
    funding = StringProperty("")  # the way to pay chosen: "Wallet", "Bank card ****1234"
    funding_choices = NumericProperty(0)  # how many ways to pay there are to choose from
    funding_balance = StringProperty("")  # the chosen wallet's balance, formatted
    # Refused before the PIN: "" | insufficient_funds | mandate_limit_exceeded (the PIN pad
    # is hidden; the household changes the way to pay or leaves).
    funding_problem = StringProperty("")
    funding_problem_detail = StringProperty("")  # the gateway's words, for a card's limits
    pin_length = NumericProperty(0)
    tries_left = NumericProperty(-1)  # -1: no wrong PIN yet
    step = StringProperty("preparing")  # preparing | signing | sending | confirming
    elapsed = NumericProperty(0.0)
    way_out = BooleanProperty(False)
    # The receipt shown (formatted); receipt_qr is the gateway's signed QR string.
    receipt_amount = StringProperty("")
    receipt_biller = StringProperty("")
    receipt_account = StringProperty("")
    receipt_period = StringProperty("")
    receipt_paid_at = StringProperty("")
    receipt_no = StringProperty("")
    receipt_qr = StringProperty("")
    receipt_display_hash = StringProperty("")  # hex SHA-256 of the confirmation text signed
    receipt_payment_id = StringProperty("")
    receipt_status = StringProperty("succeeded")  # the payment's state (tvapp/ui/statuses.py)
    receipt_utility_ref = StringProperty("")
    receipt_refund_reason = StringProperty("")


class HistoryVM(EventDispatcher):
    # dicts: key (payment id), title, period, amount, when, status, utility_ref, reason
    payments = ListProperty([])


class CreditingVM(EventDispatcher):
    """查询到账 of one payment, shown on the history and the receipt."""

    payment_id = StringProperty("")
    # "" (not asked) | asking | credited | not_yet | rejected | not_taken | utility_unreachable
    # | utility_not_connected | network_down | error  (tvapp/ui/statuses.py CREDITING_ANSWERS)
    state = StringProperty("")
    utility_ref = StringProperty("")
    reason = StringProperty("")


class SettingsVM(EventDispatcher):
    bind_utility = StringProperty("electricity")
    bind_number = StringProperty("")
    bind_result = StringProperty("")  # message id ("" when none)
    bind_detail = StringProperty("")  # the gateway's own words, when it refused
    bind_code_length = NumericProperty(0)  # the code itself stays in the controller, unshown


class StateVM(EventDispatcher):
    """A full-screen state: no dongle, PIN blocked, network down, payment refused..."""

    kind = StringProperty("")
    detail = StringProperty("")
