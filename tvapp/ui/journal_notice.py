"""Telling the household, and warning staff, what start-up found in the payment journal.

The notice comes before Home; the accounts load behind it. The dongle's signature counter is
then compared with the highest counter the journal knows: a higher one means payments were
signed that this box has no record of, which staff must check with the gateway.
"""

from __future__ import annotations

import logging
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import NumericProperty, StringProperty

from tvapp.journal_startup import unknown_signatures

log = logging.getLogger("tvapp.journal")


class JournalNoticeVM(EventDispatcher):
    condition = StringProperty("")  # JournalReport.condition while a notice is due, else ""
    kept_as = StringProperty("")  # the damaged file's name, for staff
    unknown_signatures = NumericProperty(0)  # dongle signatures the journal has no record of


def show_journal_notice(app: Any) -> None:
    """Show the journal screen if start-up found the journal damaged, missing or unwritable."""
    report = app.services.journal_report
    if not report.needs_notice:
        return
    vm = app.journal_vm
    vm.condition, vm.kept_as = report.condition, report.kept_as
    app.controller.show("journal")
    journal = app.services.journal

    def compare(counter: int) -> None:
        vm.unknown_signatures = unknown = unknown_signatures(journal, counter)
        if unknown:
            log.warning(
                "event=journal_unknown_signatures counter=%d known=%d: the dongle signed %d "
                "payment(s) this box has no record of; check them with the gateway",
                counter,
                journal.highest_counter(),
                unknown,
            )

    def unchecked(exc: BaseException) -> None:
        log.warning("event=journal_counter_unchecked error=%s", type(exc).__name__)

    app.controller.worker.run(lambda: app.services.dongle.client.info().counter, compare, unchecked)
