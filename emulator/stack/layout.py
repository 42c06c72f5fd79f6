"""Where each part of the stack keeps its files inside the state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def gateway(self) -> Path:
        return self.root / "gateway"

    @property
    def gateway_db(self) -> Path:
        return self.gateway / "gateway.db"

    @property
    def dongles(self) -> Path:
        return self.root / "dongles"

    @property
    def daemon(self) -> Path:
        return self.root / "daemon"

    @property
    def daemon_socket(self) -> Path:
        return self.daemon / "dongled.sock"

    @property
    def daemon_config(self) -> Path:
        return self.daemon / "dongled.toml"

    @property
    def utility(self) -> Path:
        return self.root / "utility"

    @property
    def bank(self) -> Path:
        return self.root / "bank"

    @property
    def tv(self) -> Path:
        return self.root / "tv"

    @property
    def kivy_home(self) -> Path:
        return self.root / "kivy"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def staff_token(self) -> Path:
        return self.root / "staff-token"

    def make(self) -> None:
        for directory in (
            self.root,
            self.tls,
            self.gateway,
            self.dongles,
            self.daemon,
            self.utility,
            self.bank,
            self.tv,
            self.kivy_home,
            self.logs,
        ):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
