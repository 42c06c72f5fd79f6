"""All services of the app, built from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from tvapp.config import TvConfig
from tvapp.journal import Journal
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

    @classmethod
    def build(cls, config: TvConfig) -> Services:
        gateway = Gateway(config.gateway_url, ca_file=config.ca_file)
        dongle = DongleService(config.daemon_socket)
        session = DeviceSession(gateway, dongle)
        journal = Journal(config.state_path / JOURNAL_FILE)
        return cls(gateway, dongle, session, Payments(session, dongle, journal), journal)

    def close(self) -> None:
        self.dongle.close()
        self.gateway.close()
        self.journal.close()
