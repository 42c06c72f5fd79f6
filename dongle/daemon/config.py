"""Configuration of tvpay-dongled: TOML file, then TVPAY_* environment, then command-line flags.

See packaging/config/dongled.toml for a commented example. Every setting has a default that
works for the emulator except the USB backend and the hotplug source, which default to real
hardware (libusb and udev).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dongle.errors import DaemonError
from dongle.tomlfile import read_settings
from protocol.usb import DEFAULT_PID, DEFAULT_VID

DEFAULT_CONFIG = "/etc/tvpay/dongled.toml"
DEFAULT_SOCKET = "/run/tvpay/dongled.sock"


class ConfigError(DaemonError):
    code = "config"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    socket_path: str = DEFAULT_SOCKET
    socket_mode: int = 0o660
    socket_group: str | None = "tvpay"  # None: leave the daemon's own group
    usb_backend: str | None = None  # "module:factory?ARG"; None means libusb
    vid: int = DEFAULT_VID
    pid: int = DEFAULT_PID
    command_timeout: float = 5.0  # per dongle answer; a KEEPALIVE restarts it
    hotplug_source: str = "udev"  # or "module:start?ARG"
    allowed_users: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ("tvpay",)
    staff_groups: tuple[str, ...] = ("tvpay-staff",)
    lease_idle_timeout: float = 60.0  # a holder silent this long loses its lease to others
    acquire_wait_max: float = 120.0  # longest wait a client may ask for in ``acquire``
    shutdown_grace: float = 5.0  # how long SIGTERM waits for commands in flight
    # Connection caps: far below the file descriptors the daemon may open (checked at start), so
    # one user's flood is refused with an answer instead of starving everyone of descriptors.
    max_connections_per_uid: int = 16
    max_connections: int = 64
    message_timeout: float = 10.0  # a message begun must be complete this long after
    client_idle_timeout: float = 600.0  # a connection without a request (or subscription) ends
    send_timeout: float = 5.0  # a client that takes no reply this long is not reading: dropped


# TOML table/key -> DaemonConfig field, with the converter applied to the TOML value.
_TOML_KEYS: dict[tuple[str, str], str] = {
    ("socket", "path"): "socket_path",
    ("socket", "mode"): "socket_mode",
    ("socket", "group"): "socket_group",
    ("usb", "backend"): "usb_backend",
    ("usb", "vid"): "vid",
    ("usb", "pid"): "pid",
    ("usb", "command_timeout"): "command_timeout",
    ("hotplug", "source"): "hotplug_source",
    ("access", "users"): "allowed_users",
    ("access", "groups"): "allowed_groups",
    ("access", "staff_groups"): "staff_groups",
    ("leases", "idle_timeout"): "lease_idle_timeout",
    ("leases", "acquire_wait_max"): "acquire_wait_max",
    ("daemon", "shutdown_grace"): "shutdown_grace",
    ("clients", "max_per_uid"): "max_connections_per_uid",
    ("clients", "max_total"): "max_connections",
    ("clients", "message_timeout"): "message_timeout",
    ("clients", "idle_timeout"): "client_idle_timeout",
    ("clients", "send_timeout"): "send_timeout",
}
_SECONDS = frozenset(
    {
        "command_timeout",
        "lease_idle_timeout",
        "acquire_wait_max",
        "shutdown_grace",
        "message_timeout",
        "client_idle_timeout",
        "send_timeout",
    }
)
_COUNTS = frozenset({"max_connections_per_uid", "max_connections"})

_ENV_KEYS: dict[str, str] = {
    "TVPAY_DONGLED_SOCKET": "socket_path",
    "TVPAY_DONGLED_SOCKET_MODE": "socket_mode",
    "TVPAY_DONGLED_SOCKET_GROUP": "socket_group",
    "TVPAY_USB_BACKEND": "usb_backend",
    "TVPAY_HOTPLUG_SOURCE": "hotplug_source",
    "TVPAY_DONGLED_LEASE_IDLE_TIMEOUT": "lease_idle_timeout",
}


def _convert(name: str, value: Any) -> Any:
    """Coerce a TOML, environment or flag value to the type of field ``name``."""
    try:
        if name == "socket_mode":
            return _in_range(
                int(value, 8) if isinstance(value, str) else int(value), 0o777, "0..777 octal"
            )
        if name in ("vid", "pid"):
            return _in_range(
                int(value, 0) if isinstance(value, str) else int(value), 0xFFFF, "0..0xffff"
            )
        if name in _SECONDS:
            number = float(value)
            if not 0 < number < math.inf:
                raise ValueError("must be a positive number of seconds")
            return number
        if name in _COUNTS:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError("must be a whole number")
            count = int(value)
            if not 1 <= count <= 1_000_000:
                raise ValueError("must be within 1..1000000")
            return count
        if name in ("allowed_users", "allowed_groups", "staff_groups"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
        if name in ("usb_backend", "socket_group"):
            return str(value) or None
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name} = {value!r} is invalid ({exc}): fix it") from None


def _in_range(number: int, highest: int, shown: str) -> int:
    if not 0 <= number <= highest:
        raise ValueError(f"must be within {shown}")
    return number


def _from_toml(path: Path) -> dict[str, Any]:
    raw = read_settings(path, _TOML_KEYS, ConfigError)
    return {name: _convert(name, value) for name, value in raw.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=f"TOML configuration (default {DEFAULT_CONFIG})")
    parser.add_argument("--socket", dest="socket_path", help="Unix socket path to serve")
    parser.add_argument("--socket-mode", dest="socket_mode", help="socket file mode, octal")
    parser.add_argument("--socket-group", dest="socket_group", help="group owning the socket")
    parser.add_argument("--usb-backend", dest="usb_backend", help="pyusb backend spec")
    parser.add_argument("--vid", help="USB vendor id of the dongle")
    parser.add_argument("--pid", help="USB product id of the dongle")
    parser.add_argument(
        "--hotplug-source", dest="hotplug_source", help="'udev', 'none' or 'module:start?ARG'"
    )
    parser.add_argument(
        "--lease-idle-timeout",
        dest="lease_idle_timeout",
        help="seconds of silence before a lease holder loses its lease (default 60)",
    )


def load_config(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> DaemonConfig:
    """Defaults, overridden by the TOML file, then the environment, then command-line flags."""
    explicit = args.config or environ.get("TVPAY_DONGLED_CONFIG")
    path = Path(explicit or DEFAULT_CONFIG)
    values: dict[str, Any] = {}
    if explicit or path.exists():
        values.update(_from_toml(path))
    for env, name in _ENV_KEYS.items():
        if env in environ:
            values[name] = _convert(name, environ[env])
    names = {f.name for f in fields(DaemonConfig)}
    for name, value in vars(args).items():
        if name in names and value is not None:
            values[name] = _convert(name, value)
    config = replace(DaemonConfig(), **values)
    if config.max_connections_per_uid > config.max_connections:
        raise ConfigError(
            f"[clients] max_per_uid = {config.max_connections_per_uid} is more than max_total = "
            f"{config.max_connections}: lower max_per_uid or raise max_total"
        )
    return config
