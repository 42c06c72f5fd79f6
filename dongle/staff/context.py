"""What every command needs, made on first use: settings, output, daemon, gateway, CAs."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

from dongle.client import DaemonClient
from dongle.staff.attestation import load_cas
from dongle.staff.config import StaffConfig
from dongle.staff.daemon import connect
from dongle.staff.gateway import StaffGateway
from dongle.staff.output import Output


@dataclass
class Context:
    config: StaffConfig
    out: Output
    _client: DaemonClient | None = field(default=None, init=False)

    def daemon(self) -> DaemonClient:
        """The command's connection to the daemon (one per command; batch makes its own)."""
        if self._client is None:
            self._client = self.new_daemon()
        return self._client

    def new_daemon(self) -> DaemonClient:
        return connect(self.config.socket_path)

    def new_gateway(self) -> StaffGateway:
        """A gateway session with the staff token; one per thread (requests.Session)."""
        return StaffGateway(
            self.config.gateway_url,
            self.config.staff_token(),
            ca_file=self.config.gateway_ca_file,
            timeout=self.config.gateway_timeout,
        )

    def cas(self) -> list[x509.Certificate]:
        return load_cas(self.config.manufacturer_cas)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
