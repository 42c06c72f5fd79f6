"""Settings of the staff tool: TOML files, then TVPAY_* environment, then command-line flags.

Files: /etc/tvpay/staff.toml, then ~/.config/tvpay/staff.toml (the user's file wins), or only
the file given with --config / TVPAY_STAFF_CONFIG. The staff token is never a plain flag, so it
does not end up in shell history: it comes from TVPAY_STAFF_TOKEN or a 0600 token file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dongle.staff.errors import ConfigError
from dongle.tomlfile import read_settings

SYSTEM_CONFIG = Path("/etc/tvpay/staff.toml")
USER_CONFIG = Path("~/.config/tvpay/staff.toml")
DEFAULT_GATEWAY = "http://127.0.0.1:8443"
# 户号: the household number the gateway knows; digits only, like State Grid's 10-13 digits.
DEFAULT_ACCOUNT_PATTERN = r"[0-9]{6,20}"


@dataclass(frozen=True, slots=True)
class StaffConfig:
    gateway_url: str = DEFAULT_GATEWAY
    gateway_ca_file: str | None = None  # TLS trust for the gateway; None = system store
    gateway_timeout: float = 10.0
    token_file: str | None = None
    socket_path: str | None = None  # None: the client library's default
    manufacturer_cas: tuple[str, ...] = ()
    account_pattern: str = DEFAULT_ACCOUNT_PATTERN
    jobs: int = 8
    token_env: str | None = field(default=None, repr=False)  # never printed

    def staff_token(self) -> str:
        """The staff token from TVPAY_STAFF_TOKEN or the token file; ConfigError if neither."""
        if self.token_env:
            return self.token_env.strip()
        if not self.token_file:
            raise ConfigError(
                "no staff token: set TVPAY_STAFF_TOKEN or pass --token-file FILE "
                "(a 0600 file holding the token from 'tvpay-gateway staff add NAME')"
            )
        return read_token_file(Path(self.token_file))

    def check_account(self, account: str) -> str:
        """The account number stripped, or ConfigError naming the expected format."""
        value = account.strip()
        if not re.fullmatch(self.account_pattern, value):
            raise ConfigError(
                f"account {value!r} is not a household number (户号): expected "
                f"{self.account_pattern}; check the number on the household's contract"
            )
        return value


def read_token_file(path: Path) -> str:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"token file {path} is readable by other users: run 'chmod 600 {path}'"
            )
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not token:
        raise ConfigError(f"token file {path} is empty: put the staff token in it")
    return token


_TOML_KEYS: dict[tuple[str, str], str] = {
    ("gateway", "url"): "gateway_url",
    ("gateway", "ca_file"): "gateway_ca_file",
    ("gateway", "timeout"): "gateway_timeout",
    ("gateway", "token_file"): "token_file",
    ("daemon", "socket"): "socket_path",
    ("attestation", "manufacturer_ca"): "manufacturer_cas",
    ("provision", "account_pattern"): "account_pattern",
    ("provision", "jobs"): "jobs",
}

_ENV_KEYS: dict[str, str] = {
    "TVPAY_GATEWAY_URL": "gateway_url",
    "TVPAY_GATEWAY_CA_FILE": "gateway_ca_file",
    "TVPAY_STAFF_TOKEN_FILE": "token_file",
    "TVPAY_DONGLED_SOCKET": "socket_path",
    "TVPAY_MANUFACTURER_CA": "manufacturer_cas",
}


def _convert(name: str, value: Any, source: str) -> Any:
    try:
        if name == "manufacturer_cas":
            if isinstance(value, str):
                return tuple(p for p in value.split(os.pathsep) if p)
            if isinstance(value, list) and all(isinstance(p, str) for p in value):
                return tuple(value)
            raise TypeError("expected a path or a list of paths")
        if name == "gateway_timeout":
            number = float(value)
            if number <= 0:
                raise ValueError("must be positive")
            return number
        if name == "jobs":
            if isinstance(value, bool):
                raise TypeError("expected an integer")
            number = int(value)
            if not 1 <= number <= 64:
                raise ValueError("must be 1..64")
            return number
        if name == "account_pattern":
            re.compile(value)
        if not isinstance(value, str):
            raise TypeError("expected text")
        return value
    except (TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"{source}: bad value for {name}: {exc}; fix it and retry") from None


def _from_toml(config: StaffConfig, path: Path) -> StaffConfig:
    raw = read_settings(path, _TOML_KEYS, ConfigError)
    return replace(
        config, **{name: _convert(name, value, str(path)) for name, value in raw.items()}
    )


def load_config(
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> StaffConfig:
    """Defaults, overridden by the config file(s), then the environment, then flags (not None)."""
    env = os.environ if env is None else env
    config = StaffConfig()
    explicit = config_file or env.get("TVPAY_STAFF_CONFIG")
    if explicit:
        config = _from_toml(config, Path(explicit))
    else:
        for path in (SYSTEM_CONFIG, USER_CONFIG.expanduser()):
            if path.is_file():
                config = _from_toml(config, path)
    changes: dict[str, Any] = {
        name: _convert(name, env[var], var) for var, name in _ENV_KEYS.items() if env.get(var)
    }
    changes["token_env"] = env.get("TVPAY_STAFF_TOKEN") or None
    for name, value in (flags or {}).items():
        if value is not None:
            changes[name] = _convert(name, value, f"--{name}")
    return replace(config, **changes)
