"""tvpay-dongled's entry point: configuration, the listening socket, readiness, SIGTERM."""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dongle import usblink
from dongle.daemon import fdlimit
from dongle.daemon.access import AccessPolicy, group_id
from dongle.daemon.admission import Gate
from dongle.daemon.config import ConfigError, DaemonConfig, add_arguments, load_config
from dongle.daemon.devices import DeviceManager
from dongle.daemon.hangup import HangupWatcher
from dongle.daemon.hotplug import start_hotplug
from dongle.daemon.leases import LeaseTable
from dongle.daemon.log import log
from dongle.daemon.notify import notify
from dongle.daemon.server import Daemon, EventHub, Server
from dongle.errors import DaemonError
from protocol import logfmt

_SD_LISTEN_FDS_START = 3
# Exit statuses (docs/daemon-api.md §1). The unit's RestartPreventExitStatus lists 69 and 78:
# restarting cannot help until someone installs or fixes something.
EXIT_FAILED = 1  # any other start-up failure (e.g. the hotplug source cannot be reached)
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE: no USB backend (libusb) is installed
EXIT_CANTCREAT = 73  # sysexits EX_CANTCREAT: the socket or its directory cannot be created
EXIT_CONFIG = 78  # sysexits EX_CONFIG: a setting is unreadable or invalid


class StartupError(DaemonError):
    code = "startup"


class BackendUnavailable(StartupError):
    """No USB backend can be used at all (libusb is not installed)."""


class SocketUnavailable(StartupError):
    """The listening socket or its directory cannot be created."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tvpay-dongled",
        description="Own the TVPay payment dongle and serve local clients on a Unix socket.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logfmt.configure()
    try:
        config = load_config(args)
    except ConfigError as exc:
        log("config_invalid", level="error", error=exc)
        return EXIT_CONFIG
    try:
        return run(config)
    except ConfigError as exc:
        log("config_invalid", level="error", error=exc)
        return EXIT_CONFIG
    except DaemonError as exc:
        log("startup_failed", level="error", error=exc)
        return _EXIT_STATUS.get(type(exc), EXIT_FAILED)


_EXIT_STATUS = {BackendUnavailable: EXIT_UNAVAILABLE, SocketUnavailable: EXIT_CANTCREAT}


def run(config: DaemonConfig) -> int:
    fdlimit.check_fits(config, fdlimit.raise_soft_limit())
    policy, missing = AccessPolicy.from_config(config)
    for name in missing:
        log("access_name_unknown", level="warning", name=name)
    try:
        backend = usblink.load_backend(config.usb_backend)
    except Exception as exc:  # a plug-in spec: any failure is a configuration problem
        raise ConfigError(f"cannot load USB backend {config.usb_backend!r}: {exc}") from None
    try:
        usblink.find_dongles(backend, config.vid, config.pid)
    except usblink.LinkError as exc:  # only "no backend at all": a plug-in's own failures pass
        raise BackendUnavailable(str(exc)) from None

    events = EventHub()
    leases = LeaseTable(config.lease_idle_timeout, events.publish)
    devices = DeviceManager(
        backend, config.vid, config.pid, config.command_timeout, events.publish, leases.forget
    )
    hangups = HangupWatcher()
    listener, owned_path = _listener(config)
    gate = Gate(listener, config.max_connections_per_uid, config.max_connections)
    server = Server(Daemon(config, policy, gate, devices, leases, events, hangups))
    stop_hotplug = start_hotplug(config.hotplug_source, devices.on_hotplug)
    devices.scan()  # after hotplug starts, so a dongle plugged in between is not missed

    def ready() -> None:
        notify("READY=1")
        log("ready", socket=config.socket_path, dongles=",".join(devices.serials()) or "-")

    try:
        _serve_until_signal(listener, server, ready)
    finally:
        notify("STOPPING=1")
        log("stopping")
        stop_hotplug()
        listener.close()
        gate.close()
        if owned_path is not None:
            owned_path.unlink(missing_ok=True)
        server.shutdown(config.shutdown_grace)
        devices.close_all()
        hangups.close()
        events.close()
        log("stopped")
    return 0


def _serve_until_signal(
    listener: socket.socket, server: Server, on_ready: Callable[[], None]
) -> None:
    """Serve until SIGTERM or SIGINT; ``on_ready`` is called once everything the loop needs is open:
    a client (or systemd) told the daemon is ready can then fill the descriptor table and the
    loop still runs."""
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True
        log("signal", name=signal.Signals(signum).name)

    previous = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    resume_at: float | None = None  # accepting is paused until then (see Server.accept)
    try:
        on_ready()
        while not stop:
            timeout = None if resume_at is None else max(resume_at - time.monotonic(), 0.0)
            ready = selector.select(timeout)
            if resume_at is not None and time.monotonic() >= resume_at:
                selector.register(listener, selectors.EVENT_READ)
                resume_at = None
            for key, _ in ready:
                if key.fileobj is not listener:
                    wake_r.recv(4096)
                elif pause := server.accept():
                    selector.unregister(listener)
                    resume_at = time.monotonic() + pause
    finally:
        selector.close()
        signal.set_wakeup_fd(previous)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        wake_r.close()
        wake_w.close()


def _listener(config: DaemonConfig) -> tuple[socket.socket, Path | None]:
    """The listening socket: systemd's (socket activation) or our own, with its mode and group.

    Returns the path to remove on exit (None for an activated socket, which systemd owns).
    """
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        sock = socket.socket(fileno=_SD_LISTEN_FDS_START)
        sock.setblocking(False)
        return sock, None
    path = Path(config.socket_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SocketUnavailable(
            f"cannot create the socket directory {path.parent} ({exc.strerror}): create it, "
            "or choose another --socket"
        ) from None
    if path.exists() or path.is_symlink():
        _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    # The socket file is created by bind() with the umask: make it never wider than wanted.
    old_umask = os.umask(0o777 & ~config.socket_mode)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise SocketUnavailable(f"cannot create the socket {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    try:
        gid = group_id(config.socket_group)
    except KeyError:
        log("socket_group_unknown", level="warning", group=config.socket_group)
        gid = None
    try:
        os.chmod(path, config.socket_mode)
        if gid is not None:
            os.chown(path, -1, gid)
    except OSError as exc:
        sock.close()
        path.unlink(missing_ok=True)
        raise SocketUnavailable(
            f"cannot give the socket {path} its mode and group ({exc.strerror}): the daemon's "
            f"user must belong to group {config.socket_group}"
        ) from None
    sock.listen(64)
    sock.setblocking(False)
    return sock, path


def _remove_stale(path: Path) -> None:
    if not stat.S_ISSOCK(path.lstat().st_mode):
        # Never delete what is not ours: a mistyped --socket must not cost someone a file.
        raise SocketUnavailable(
            f"{path} exists and is not a socket: move it or choose another --socket"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # left by a daemon that died
        return
    finally:
        probe.close()
    raise StartupError(f"another tvpay-dongled is already serving {path}: stop it first")


if __name__ == "__main__":
    sys.exit(main())
