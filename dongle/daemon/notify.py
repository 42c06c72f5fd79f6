"""systemd readiness notification (sd_notify) without libsystemd: one datagram to $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket

from dongle.daemon.log import log


def notify(state: str) -> None:
    """Send ``state`` (e.g. "READY=1") to the service manager, if one asked for it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log("notify_failed", level="warning", state=state, error=exc.strerror)
