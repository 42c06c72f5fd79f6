"""Command lines of the long-running parts: gateway, virtual-dongle cable, dongle daemon."""

from __future__ import annotations

import getpass
import os

from emulator.stack.layout import Layout
from emulator.stack.money import bank_env
from emulator.stack.process import ProcessSpec
from emulator.stack.tls import TlsMaterial
from emulator.stack.tools import tool_path

GATEWAY_READY = r"gateway listening on (?P<url>https?://[0-9.]+:(?P<port>\d+))"
CABLE_READY = r"address=(?P<host>[0-9.]+):(?P<port>\d+)"
DAEMON_READY = r"event=ready\b"


def gateway_spec(layout: Layout, tls: TlsMaterial, port: int, bank_url: str) -> ProcessSpec:
    return ProcessSpec(
        name="gateway",
        argv=(
            tool_path("tvpay-gateway"),
            "--state-dir",
            str(layout.gateway),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tls-cert",
            str(tls.server_cert),
            "--tls-key",
            str(tls.server_key),
        ),
        env=bank_env(bank_url),
        ready_pattern=GATEWAY_READY,
        ready_timeout=60.0,
    )


def cable_spec(layout: Layout, seed: int, timing: str) -> ProcessSpec:
    argv = [
        tool_path("tvpay-emulator"),
        "dongle",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        str(layout.dongles),
        "--seed",
        str(seed),
    ]
    if timing != "default":
        argv += ["--timing", timing]
    return ProcessSpec(name="dongles", argv=tuple(argv), ready_pattern=CABLE_READY)


def write_daemon_config(layout: Layout, cable_address: str) -> None:
    """The daemon's TOML: the virtual cable as USB backend and hotplug source, a private socket.

    Root may always use the daemon; the user running the emulator is allowed explicitly.
    """
    user = getpass.getuser()
    text = f"""# Written by tvpay-emulator up for this run.
[socket]
path = "{layout.daemon_socket}"
mode = "0600"
group = ""

[usb]
backend = "emulator.usb.cable:backend?{cable_address}"

[hotplug]
source = "emulator.usb.cable:hotplug?{cable_address}"

[access]
users = ["{user}"]
groups = []
staff_groups = []
"""
    tmp = layout.daemon_config.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, layout.daemon_config)


def daemon_spec(layout: Layout) -> ProcessSpec:
    return ProcessSpec(
        name="dongled",
        argv=(tool_path("tvpay-dongled"), "--config", str(layout.daemon_config)),
        ready_pattern=DAEMON_READY,
    )
