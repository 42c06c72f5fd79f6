"""tvpay-dongled as a real process for tests and benchmarks: start it against a virtual cable,
wait for its READY=1 (sd_notify), and provision its dongle through the staff operations."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dongle import pin_client
from dongle.client import DaemonClient
from protocol.pin import DongleKey
from tests.fixtures.dongles import TEST_PIN, TEST_PUK, CableProcess, OperatorCA

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    socket_path: str
    log_path: Path
    notify: socket.socket

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self, name: str = "test", **kwargs: Any) -> DaemonClient:
        return DaemonClient(self.socket_path, client_name=name, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def wait_notify(self, expected: bytes, timeout: float = STARTUP_TIMEOUT) -> bytes:
        """The next sd_notify datagram; fails if the daemon dies or stays silent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.notify.settimeout(min(0.5, deadline - time.monotonic()))
            try:
                message = self.notify.recv(4096)
            except TimeoutError:
                if self.process.poll() is not None:
                    raise AssertionError(f"tvpay-dongled exited early:\n{self.log()}") from None
                continue
            if expected in message:
                return message
        raise AssertionError(f"no {expected!r} from tvpay-dongled:\n{self.log()}")


def start_daemon(
    workdir: Path, cable: CableProcess | None, *args: str, wait_ready: bool = True
) -> DaemonProcess:
    """Run tvpay-dongled against ``cable``; returns once it has notified READY=1."""
    socket_path = str(workdir / "dongled.sock")
    notify_path = workdir / f"notify-{time.monotonic_ns()}.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_path),
        "TVPAY_DONGLED_CONFIG": str(workdir / "dongled.toml"),
    }
    (workdir / "dongled.toml").touch()
    cmd = [sys.executable, "-m", "dongle.daemon.main", "--socket", socket_path]
    if cable is not None:
        cmd += ["--usb-backend", cable.backend_spec]
        cmd += ["--hotplug-source", f"{cable.hotplug_spec}?{cable.address}"]
    cmd += list(args)
    log_path = workdir / f"dongled-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=log, stdout=log)
    daemon = DaemonProcess(process, socket_path, log_path, notify)
    if wait_ready:
        daemon.wait_notify(b"READY=1")
    return daemon


@dataclass
class ProvisionedDongle:
    serial: str
    public_key: bytes
    key_rev: int
    pin: str = TEST_PIN
    puk: str = TEST_PUK
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> DongleKey:
        return DongleKey(self.serial, self.key_rev, self.public_key)


def provision_via_daemon(client: DaemonClient) -> ProvisionedDongle:
    """Provision the only dongle through the daemon's staff operations (the test runs as root)."""
    generated = client.generate_key()
    serial = client.info().serial
    client.write_cert(OperatorCA.create().issue(generated["public_key"], serial))
    key = DongleKey(serial, generated["key_rev"], generated["public_key"])
    pin_client.set_initial_pin(client, TEST_PIN, TEST_PUK, key)
    client.lock()
    return ProvisionedDongle(serial, generated["public_key"], generated["key_rev"])
