"""View-model of the 买电 screens (meters, buy, card writing, token) and of Home's 买电 lines.

Values are ready to show (money and energy formatted, numbers masked); texts that depend on the
language are message ids or codes the kv rules translate.
"""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty


class PrepaidVM(EventDispatcher):
    # Home and the meter list. meters: dicts meter_id, kind, biller, meter_no, balance,
    # days_left (-1: not known), low, pending (a purchase paid and not on the meter yet).
    meters = ListProperty([])
    low_meter = StringProperty("")  # a remote meter running low: its number ("" = none)
    low_balance = StringProperty("")
    low_days = NumericProperty(-1)
    unwritten = NumericProperty(0)  # purchases paid on this box and not on their meter yet
    loading = BooleanProperty(False)

    # The buy screen.
    kind = StringProperty("")  # remote | card | token
    biller = StringProperty("")
    meter_no = StringProperty("")
    balance = StringProperty("")  # the meter's known balance, formatted; "" when none
    presets = ListProperty([])  # dicts: fen, label
    digits = StringProperty("")  # whole yuan typed on the remote
    amount = StringProperty("")  # formatted, "" when nothing chosen yet
    # "" | amount_below_minimum | amount_above_maximum | amount_not_multiple
    # | balance_above_maximum (tvapp/services/prepaid_rules.py), with the rules' numbers
    refusal = StringProperty("")
    rule_min = StringProperty("")
    rule_max = StringProperty("")
    rule_multiple = StringProperty("")
    rule_room = StringProperty("")
    quote_state = StringProperty("")  # "" | asking | ready | refused | failed
    quote_detail = StringProperty("")  # the gateway's words when it refused the quote
    energy = StringProperty("")  # "178.443 kWh"
    tiers = ListProperty([])  # dicts: tier, energy, price
    # A purchase of this meter not finished: "" | card | token | remote (what to do says so)
    pending = StringProperty("")
    # Before the purchase is made: "" | reading_card | no_card | unreadable
    card = StringProperty("")

    # Card writing.
    write_step = StringProperty("reading")  # tvapp/services/card_writer.py STEPS
    write_elapsed = NumericProperty(0.0)
    # "" (running) | written | incomplete | no_card | nothing | network | unreadable | error
    write_outcome = StringProperty("")
    write_detail = StringProperty("")

    # The token.
    token = StringProperty("")  # "1234 5678 9012 3456 7890"; "" while it is fetched
    token_amount = StringProperty("")
    token_energy = StringProperty("")
    token_state = StringProperty("")  # "" | fetching | shown | failed | history (none new)
    token_history = ListProperty([])  # dicts: when, amount, token (grouped)
    speech = StringProperty("")  # "" | speaking | missing (espeak-ng not installed)
