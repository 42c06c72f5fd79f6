"""All services of the app, built from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from tvapp.config import TvConfig
from tvapp.journal import Journal
from tvapp.journal_startup import JournalReport, open_journal
from tvapp.services.dongle import DongleService
from tvapp.services.gateway import Gateway
from tvapp.services.payments import Payments
from tvapp.services.session import DeviceSession

JOURNAL_FILE = "journal.sqlite3"


@dataclass
class Services:
    gateway: Gateway
    dongle: DongleService
    session: DeviceSession
    payments: Payments
    journal: Journal
    journal_report: JournalReport  # what start-up found: the app tells the household

    @classmethod
    def build(cls, config: TvConfig) -> Services:
        gateway = Gateway(config.gateway_url, ca_file=config.ca_file)
        dongle = DongleService(config.daemon_socket)
        session = DeviceSession(gateway, dongle)
        journal, report = open_journal(config.state_path / JOURNAL_FILE)
        payments = Payments(session, dongle, journal)
        return cls(gateway, dongle, session, payments, journal, report)

    def close(self) -> None:
        self.dongle.close()
        self.gateway.close()
        self.journal.close()
