"""The utility simulator as a real process for tests: started on a free port with the gateway's
receipt public key and a clock file the test moves, stopped at the end."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.signing import public_key_bytes, sign

START = 1_780_000_000  # 2026-05-28T20:26:40Z: the simulated clock's first reading


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signature_header(key: ec.EllipticCurvePrivateKey, body: bytes) -> str:
    import hashlib

    kid = hashlib.sha256(public_key_bytes(key.public_key())).hexdigest()[:16]
    return f"{kid}:{base64.b64encode(sign(key, body)).decode()}"


@dataclass
class UtilityUnderTest:
    url: str
    clock_file: Path
    process: subprocess.Popen[str]

    def set_clock(self, unix: int) -> None:
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(str(unix))
        tmp.replace(self.clock_file)

    def advance(self, seconds: int) -> int:
        now = int(self.clock_file.read_text()) + seconds
        self.set_clock(now)
        return now

    def control(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = requests.request(method, self.url + path, json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        return self.control("GET", "/control/state")

    def post_signed(
        self, key: ec.EllipticCurvePrivateKey, payload: dict[str, Any]
    ) -> requests.Response:
        body = json.dumps(payload).encode()
        return requests.post(
            self.url + "/writeoffs",
            data=body,
            headers={"TVPay-Signature": signature_header(key, body)},
            timeout=10,
        )


@contextmanager
def utility_process(
    directory: Path, gateway_key_pem: bytes, clock_file: Path | None = None
) -> Iterator[UtilityUnderTest]:
    directory.mkdir(parents=True, exist_ok=True)
    pem = directory / "gateway-receipt.pub.pem"
    pem.write_bytes(gateway_key_pem)
    clock = clock_file or directory / "clock"
    if not clock.exists():
        clock.write_text(str(START))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator.utility",
            "serve",
            "--state-dir",
            str(directory / "state"),
            "--gateway-key",
            str(pem),
            "--clock-file",
            str(clock),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("utility listening on "):
            process.kill()
            raise AssertionError(f"the utility did not start: {line!r} {process.stderr.read()}")
        yield UtilityUnderTest(line.split()[-1], clock, process)
    finally:
        process.terminate()
        process.wait(10)
