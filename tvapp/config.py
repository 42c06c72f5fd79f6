"""Settings of the TV app: TOML file, then ``TVPAY_*`` environment variables, then CLI flags.

Every setting has a default that works with the emulator (`tvpay-emulator up`).

    [tvapp]
    gateway_url = "https://gateway.example:8443"
    ca_file = "/etc/tvpay/gateway-ca.pem"
    daemon_socket = "/run/tvpay/dongled.sock"
    state_dir = "/var/lib/tvpay/tvapp"
    language = "zh_CN"
    window = "1920x1080"
    fullscreen = true
    evdev = true
    holder_name = "张三"     # the household's name, for binding accounts with the holder check
"""

from __future__ import annotations

import argparse
import errno
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tvapp.i18n import LANGUAGES, check_language

DEFAULT_CONFIG = Path("/etc/tvpay/tvapp.toml")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting and its source."""


class StateDirError(OSError):
    """The state directory cannot be created, read or written; the message names it."""


@dataclass(frozen=True, slots=True)
class TvConfig:
    gateway_url: str = "http://127.0.0.1:8443"
    ca_file: str | None = None
    daemon_socket: str | None = None
    state_dir: str = ""
    language: str = "zh_CN"
    window: str = "1280x720"
    fullscreen: bool = False
    evdev: bool = True
    holder_name: str = ""
    resubmit_seconds: float = 15.0

    @property
    def window_size(self) -> tuple[int, int]:
        return parse_window(self.window)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir or default_state_dir())


_ENV = {
    "gateway_url": "TVPAY_GATEWAY_URL",
    "ca_file": "TVPAY_CA_FILE",
    "daemon_socket": "TVPAY_DONGLED_SOCKET",
    "state_dir": "TVPAY_TV_STATE_DIR",
    "language": "TVPAY_LANGUAGE",
    "window": "TVPAY_TV_WINDOW",
    "fullscreen": "TVPAY_TV_FULLSCREEN",
    "evdev": "TVPAY_TV_EVDEV",
    "holder_name": "TVPAY_HOLDER_NAME",
    "resubmit_seconds": "TVPAY_TV_RESUBMIT_SECONDS",
}


def default_state_dir() -> str:
    if os.geteuid() == 0:
        return "/var/lib/tvpay/tvapp"
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "tvpay", "tvapp")


def parse_window(value: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise ConfigError(f"window must look like 1920x1080, not {value!r}") from None
    if not (320 <= width <= 7680 and 240 <= height <= 4320):
        raise ConfigError(f"window size {value!r} is out of range")
    return width, height


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = {f.name: f.type for f in fields(TvConfig)}[name]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{name} in {source} must be true or false")
    if kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} in {source} must be a number") from None
        if number <= 0:
            raise ConfigError(f"{name} in {source} must be positive")
        return number
    if not isinstance(value, str):
        raise ConfigError(f"{name} in {source} must be text")
    return value


def _validate(config: TvConfig) -> TvConfig:
    try:
        check_language(config.language)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    parse_window(config.window)
    if not config.gateway_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"gateway_url must start with https:// (or http://), not {config.gateway_url!r}"
        )
    if config.ca_file and not os.path.isfile(config.ca_file):
        raise ConfigError(f"ca_file {config.ca_file} does not exist")
    return config


def load_config(
    path: Path | None, env: Mapping[str, str], overrides: Mapping[str, Any]
) -> TvConfig:
    """Merge the TOML file (missing default file is fine), the environment and CLI overrides."""
    values: dict[str, Any] = {}
    file = path or DEFAULT_CONFIG
    if path is not None or file.exists():
        try:
            with file.open("rb") as fh:
                table = tomllib.load(fh).get("tvapp", {})
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: tvapp must be a [tvapp] table")
        unknown = sorted(set(table) - set(_ENV))
        if unknown:
            raise ConfigError(f"{file}: unknown settings {', '.join(unknown)}")
        values.update({k: _coerce(k, v, str(file)) for k, v in table.items()})
    for name, var in _ENV.items():
        if var in env:
            values[name] = _coerce(name, env[var], var)
    values.update(
        {k: _coerce(k, v, "the command line") for k, v in overrides.items() if v is not None}
    )
    return _validate(replace(TvConfig(), **values))


def ensure_state_dir(path: Path) -> None:
    """Create the state directory if needed and prove it can be read and written, so a bad one
    stops the app at start with its path, not at the first payment."""
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        path.mkdir(parents=True, exist_ok=True)
        os.listdir(path)
        # Only a real write proves it: access() says yes to root on a read-only mount.
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise StateDirError(
            f"state directory {path} cannot be used ({exc.strerror or exc}): check that it is a "
            f"directory that this user (uid {os.geteuid()}) can read and write, or set --state-dir"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help=f"TOML file (default {DEFAULT_CONFIG})")
    parser.add_argument("--gateway-url", help="gateway base URL (env TVPAY_GATEWAY_URL)")
    parser.add_argument(
        "--ca-file", help="CA certificate to verify the gateway's TLS (TVPAY_CA_FILE)"
    )
    parser.add_argument("--daemon-socket", help="dongle daemon socket (TVPAY_DONGLED_SOCKET)")
    parser.add_argument("--state-dir", help="where the payment journal lives (TVPAY_TV_STATE_DIR)")
    # No argparse choices: the settings check reports a bad value in one line, from any source.
    parser.add_argument("--language", help=f"{', '.join(LANGUAGES)} (default zh_CN)")
    parser.add_argument("--window", help="window size, e.g. 1920x1080 (TVPAY_TV_WINDOW)")
    parser.add_argument(
        "--fullscreen", action=argparse.BooleanOptionalAction, default=None, help="full screen"
    )
    parser.add_argument(
        "--evdev",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read remotes from /dev/input (default on)",
    )
    parser.add_argument("--holder-name", help="household's name for binding accounts")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in _ENV}
