"""Gateway configuration: ``<state-dir>/gateway.toml``, overridden by ``TVPAY_GATEWAY_*`` variables
and command-line flags. Every setting has a default that suits the emulator."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError

DEFAULT_STATE_DIR = Path("/var/lib/tvpay/gateway")
CONFIG_NAME = "gateway.toml"
DB_NAME = "gateway.db"
OPERATOR_CA_KEY = "operator-ca.key"
OPERATOR_CA_CERT = "operator-ca.pem"
RECEIPT_KEY = "receipt.key"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    state_dir: Path = DEFAULT_STATE_DIR
    gateway_id: str = "tvpay-gw-1"
    database_url: str = ""
    manufacturer_ca: tuple[Path, ...] = ()
    session_ttl_seconds: int = 900
    challenge_ttl_seconds: int = 120
    payment_ttl_seconds: int = 300
    # How long after expires_at a dongle's signature is still accepted: a box keeps a signature
    # it could not send through a network outage and must not lose it (docs/gateway.md §1.5).
    signed_grace_seconds: int = 30 * 86400
    idempotency_ttl_seconds: int = 86400
    max_body_bytes: int = 65536
    # The bank's direct-debit interface (docs/money.md, "Bank mandates"); empty: no mandates.
    bank_url: str = ""
    # A debit not answered in this time is left processing and resolved later: a household
    # waits seconds at most, however slow the bank.
    bank_timeout_seconds: int = 5

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the SQLite file inside the state directory."""
        return self.database_url or f"sqlite:///{self.state_dir / DB_NAME}"

    def path(self, name: str) -> Path:
        return self.state_dir / name


_INT_KEYS = (
    "session_ttl_seconds",
    "challenge_ttl_seconds",
    "payment_ttl_seconds",
    "signed_grace_seconds",
    "idempotency_ttl_seconds",
    "max_body_bytes",
    "bank_timeout_seconds",
)


def _from_mapping(base: GatewayConfig, data: dict[str, Any], source: str) -> GatewayConfig:
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("gateway_id", "database_url", "bank_url"):
            if not isinstance(value, str):
                raise ConfigError(f"{source}: {key} must be a string")
            changes[key] = value
        elif key == "manufacturer_ca":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: manufacturer_ca must be a list of file paths")
            changes[key] = tuple(Path(v) for v in value)
        elif key in _INT_KEYS:
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{source}: {key} must be a positive integer")
            changes[key] = value
        else:
            raise ConfigError(f"{source}: unknown setting {key!r}; see docs/gateway.md")
    return replace(base, **changes)


def load_config(
    state_dir: Path | None = None,
    config_file: Path | None = None,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
) -> GatewayConfig:
    """Defaults < TOML file < environment < explicit arguments (the CLI flags)."""
    env = dict(os.environ) if env is None else env
    state = state_dir or Path(env.get("TVPAY_GATEWAY_STATE", str(DEFAULT_STATE_DIR)))
    config = GatewayConfig(state_dir=state)
    explicit = config_file or (
        Path(env["TVPAY_GATEWAY_CONFIG"]) if env.get("TVPAY_GATEWAY_CONFIG") else None
    )
    path = explicit or state / CONFIG_NAME
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc}); fix or remove it") from None
        config = _from_mapping(config, data, str(path))
    elif explicit is not None:
        raise ConfigError(f"config file {path} does not exist")
    env_map = {
        "TVPAY_GATEWAY_ID": "gateway_id",
        "TVPAY_GATEWAY_DATABASE_URL": "database_url",
        "TVPAY_GATEWAY_BANK_URL": "bank_url",
    }
    overrides: dict[str, Any] = {v: env[k] for k, v in env_map.items() if k in env}
    if "TVPAY_GATEWAY_MANUFACTURER_CA" in env:
        overrides["manufacturer_ca"] = [
            p for p in env["TVPAY_GATEWAY_MANUFACTURER_CA"].split(os.pathsep) if p
        ]
    config = _from_mapping(config, overrides, "environment")
    if database_url:
        config = replace(config, database_url=database_url)
    return config


def write_config(config: GatewayConfig) -> Path:
    """Write gateway.toml (0600) with the settings that differ between installations."""
    lines = [
        "# TVPay gateway configuration; see docs/gateway.md",
        f"gateway_id = {_toml_str(config.gateway_id)}",
        f"database_url = {_toml_str(config.database_url)}",
        f"bank_url = {_toml_str(config.bank_url)}",
        "manufacturer_ca = [" + ", ".join(_toml_str(str(p)) for p in config.manufacturer_ca) + "]",
    ]
    lines += [f"{key} = {getattr(config, key)}" for key in _INT_KEYS]
    path = config.path(CONFIG_NAME)
    write_private(path, ("\n".join(lines) + "\n").encode())
    return path


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner, atomically (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
