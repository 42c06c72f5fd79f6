"""A provisioning bench for tests: virtual dongles on the virtual cable, a real daemon and a real
gateway (SQLite), each its own subprocess, and the staff tool run as a subprocess against them.

    with staff_bench(count=6) as bench:
        serial = bench.take()
        household = bench.household()
        result = bench.tool("provision", "--account", household, "--pin", PIN, "--serial", serial)
        assert result.rc == 0, result.stderr

Dongles are handed out with ``take()`` so tests sharing a bench never touch each other's.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from dongle import pin_client
from dongle.client import DaemonClient
from emulator.firmware.factory import ManufacturerCA, load_or_create_ca, manufacture
from emulator.stack.tls import TlsMaterial
from tests.fixtures.dongle_keys import attested_key
from tests.fixtures.dongles import CableProcess, running_cable

ROOT = Path(__file__).resolve().parents[2]
PIN = "246813"
STARTUP = 180.0  # generous: other suites may be loading the 2 cores


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)  # polling with a deadline, not a synchronisation sleep
        delay = min(delay * 2, 0.2)


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Gateway:
    state_dir: Path
    token: str
    url: str = ""
    process: subprocess.Popen[str] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--state-dir", str(self.state_dir), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=STARTUP,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, tls: TlsMaterial | None = None) -> None:
        """Serve on a free port (HTTPS with ``tls``); the URL changes on every start."""
        command = [sys.executable, "-m", "gateway.cli", "--state-dir", str(self.state_dir)]
        command += ["serve", "--host", "127.0.0.1", "--port", "0"]
        if tls is not None:
            command += ["--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key)]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until it listens, or died
        if not line.startswith("gateway listening on "):
            raise RuntimeError(f"gateway did not start: {line!r}, rc={self.process.poll()}")
        self.url = line.split()[-1]
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        return requests.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {token or self.token}", **(headers or {})},
            timeout=10,
        )

    def dongle(self, serial: str) -> dict[str, Any] | None:
        response = self.call("GET", f"/api/v1/staff/dongles/{serial}")
        return response.json() if response.status_code == 200 else None


def start_gateway(directory: Path, manufacturer_ca: Path) -> Gateway:
    gateway = Gateway(directory, token="")
    gateway.cli("init", "--manufacturer-ca", str(manufacturer_ca))
    gateway.token = gateway.cli("staff", "add", "bench-tester").strip().splitlines()[-1]
    gateway.start()
    return gateway


@dataclass
class Daemon:
    socket_path: str
    process: subprocess.Popen[bytes]

    def client(self) -> DaemonClient:
        return DaemonClient(self.socket_path, client_name="bench-test", timeout=20)


def start_daemon(directory: Path, cable: CableProcess) -> Daemon:
    socket_path = str(directory / "dongled.sock")
    log_file = (directory / "dongled.log").open("wb")  # read when start-up fails
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dongle.daemon.main",
            "--socket",
            socket_path,
            "--socket-group",
            "",
            "--usb-backend",
            cable.backend_spec,
            "--hotplug-source",
            f"{cable.hotplug_spec}?{cable.address}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        env={**os.environ, "TVPAY_DONGLED_CONFIG": ""},
    )
    log_file.close()  # the daemon has its own copy
    daemon = Daemon(socket_path, process)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"tvpay-dongled exited with {process.returncode}")
        try:
            with daemon.client() as client:
                return {d.serial for d in client.devices()} >= set(cable.serials)
        except Exception:
            return False

    try:
        wait_until(ready, STARTUP, "the daemon to see every dongle")
    except AssertionError:
        _stop(process)
        log = (directory / "dongled.log").read_text(errors="replace")[-3000:]
        raise AssertionError(
            f"tvpay-dongled did not see every dongle; its log ends:\n{log}"
        ) from None
    return daemon


@dataclass
class ToolResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


@dataclass
class Bench:
    tmp: Path
    cable: CableProcess
    daemon: Daemon
    gateway: Gateway
    forged: str  # a dongle whose attestation chains to a CA nobody trusts
    forger_ca: Path
    config_file: Path
    _taken: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, count: int = 1) -> list[str] | str:
        """Factory-fresh dongles no other test uses."""
        with self._lock:
            free = [s for s in self.cable.serials if s not in self._taken and s != self.forged]
            chosen = free[:count]
            assert len(chosen) == count, "the bench ran out of dongles: raise its count"
            self._taken.update(chosen)
        return chosen[0] if count == 1 else chosen

    def claim(self, serials: list[str]) -> None:
        """Mark dongles a batch picked by itself ("*" rows) as used."""
        with self._lock:
            self._taken.update(serials)

    def household(self) -> str:
        number = "33" + "".join(secrets.choice("0123456789") for _ in range(8))
        response = self.gateway.call(
            "POST",
            "/api/v1/staff/households",
            {"household_no": number, "name": "测试户", "address": "上海市浦东新区测试路1号"},
        )
        assert response.status_code == 201, response.text
        return number

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TVPAY_")}
        env.update(
            TVPAY_STAFF_CONFIG=str(self.config_file),
            TVPAY_GATEWAY_URL=self.gateway.url,
            TVPAY_DONGLED_SOCKET=self.daemon.socket_path,
            TVPAY_STAFF_TOKEN=self.gateway.token,
            TVPAY_MANUFACTURER_CA=str(self.cable.manufacturer_ca),
        )
        env.update(extra)
        return env

    def tool(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None, timeout: float = 120
    ) -> ToolResult:
        done = subprocess.run(
            [sys.executable, "-m", "dongle.staff.cli", *args],
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            env=env or self.env(),
            timeout=timeout,
        )
        return ToolResult(done.returncode, done.stdout, done.stderr)

    def provision(self, serial: str, household: str, *extra: str, **env: str) -> ToolResult:
        return self.tool(
            "--json",
            "provision",
            "--account",
            household,
            "--pin",
            PIN,
            "--serial",
            serial,
            *extra,
            env=self.env(**env),
        )

    def wait_plugged(self, serial: str, plugged: bool = True) -> None:
        """Until the daemon has seen the dongle arrive (or leave)."""
        with self.daemon.client() as client:
            wait_until(
                lambda: (serial in {d.serial for d in client.devices()}) is plugged,
                20,
                f"the daemon to see {serial} {'plugged' if plugged else 'unplugged'}",
            )

    def info(self, serial: str) -> Any:
        with self.daemon.client() as client:
            return client.info(serial)

    def open_session(self, serial: str) -> requests.Response:
        """A device session as the TV box opens one: the gateway's challenge signed by the dongle."""
        response = self.gateway.call(
            "POST", "/api/v1/device-sessions/challenge", {"dongle_id": serial}
        )
        if response.status_code != 200:
            return response
        body = response.json()
        challenge = base64.b64decode(body["challenge"])
        with self.daemon.client() as client:
            signed = client.sign_session(body["gateway_id"], challenge, body["timestamp"], serial)
        return self.gateway.call(
            "POST",
            "/api/v1/device-sessions",
            {
                "dongle_id": serial,
                "key_rev": signed.key_rev,
                "challenge": body["challenge"],
                "timestamp": body["timestamp"],
                "signature": base64.b64encode(signed.signature).decode(),
            },
        )

    def pin_works(self, serial: str, pin: str = PIN) -> bool:
        with self.daemon.client() as client:
            return len(pin_client.obtain_pin_token(client, pin, attested_key(client, serial))) == 32


@contextmanager
def staff_bench(
    count: int = 6,
    timing: str | None = None,
    prepare: Callable[[Path, ManufacturerCA], None] | None = None,
) -> Iterator[Bench]:
    """``prepare(dongles_dir, genuine_ca)`` may manufacture extra dongles before the cable starts;
    they count in ``count`` and are the caller's to ``claim``."""
    with tempfile.TemporaryDirectory(prefix="tvpay-staff-") as tmp_name:
        tmp = Path(tmp_name)
        dongles = tmp / "dongles"
        dongles.mkdir()
        genuine = load_or_create_ca(dongles)  # the genuine manufacturer, made before the forgery
        forger = load_or_create_ca(tmp / "forger")
        forged = "TVP00000F0F0F"
        manufacture(dongles, forger, forged)
        if prepare is not None:
            prepare(dongles, genuine)
        config_file = tmp / "staff.toml"
        config_file.write_text("[provision]\njobs = 8\n", encoding="utf-8")
        with running_cable(count + 1, state_dir=dongles, timing=timing) as cable:
            gateway = start_gateway(tmp / "gateway", cable.manufacturer_ca)
            daemon = start_daemon(tmp, cable)
            try:
                yield Bench(tmp, cable, daemon, gateway, forged, forger.cert_path, config_file)
            finally:
                _stop(daemon.process)
                gateway.stop()
