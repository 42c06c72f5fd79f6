"""The extracted tvpay-gateway works on Debian's python3 with its vendored dependencies: the
unit's first-start initialisation with the shipped configuration, serving, and bad input."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from protocol import pki

STARTUP_TIMEOUT = 60.0


def _env() -> dict[str, str]:
    # Nothing of the build venv may leak in: the package must carry what Debian lacks.
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def _gateway(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "usr/bin/tvpay-gateway"), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )


def _manufacturer_ca(path: Path) -> Path:
    ca = pki.make_ca(pki.subject_name("Test Dongle Manufacturer CA"), days=30)
    path.write_bytes(pki.certificate_pem(ca.certificate))
    return path


@pytest.fixture
def initialised(gateway_root: Path, tmp_path: Path) -> Iterator[list[str]]:
    """Global options as the unit passes them, after the unit's ExecStartPre (init) ran with
    the shipped configuration (its manufacturer CA path pointed at a test CA)."""
    shipped = (gateway_root / "etc/tvpay/gateway.toml").read_text(encoding="utf-8")
    ca = _manufacturer_ca(tmp_path / "manufacturer-ca.pem")
    config = tmp_path / "gateway.toml"
    config.write_text(shipped.replace("/etc/tvpay/manufacturer-ca.pem", str(ca)), "utf-8")
    options = ["--state-dir", str(tmp_path / "state"), "--config", str(config)]
    result = _gateway(gateway_root, *options, "init")
    assert result.returncode == 0, result.stderr
    yield options


def test_gateway_launcher_runs_on_debian_python(gateway_root: Path) -> None:
    result = _gateway(gateway_root, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: tvpay-gateway" in result.stdout


def test_first_start_creates_private_state(initialised: list[str], tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert state.stat().st_mode & 0o777 == 0o700
    files = {p.name: p.stat().st_mode & 0o777 for p in state.iterdir()}
    assert {"gateway.db", "operator-ca.key", "receipt.key"} <= set(files)
    assert set(files.values()) == {0o600}


def test_init_again_keeps_the_keys(
    gateway_root: Path, initialised: list[str], tmp_path: Path
) -> None:
    key = (tmp_path / "state" / "receipt.key").read_bytes()
    result = _gateway(gateway_root, *initialised, "init")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "receipt.key").read_bytes() == key


def test_installed_gateway_serves_the_api(gateway_root: Path, initialised: list[str]) -> None:
    cmd = [str(gateway_root / "usr/bin/tvpay-gateway"), *initialised, "serve", "--port", "0"]
    process = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server accepts connections
        assert line.startswith("gateway listening on http://127.0.0.1:"), process.stderr
        url = line.split()[-1]
        health = requests.get(f"{url}/api/v1/health", timeout=10)
        assert health.json() == {"status": "ok", "database": "ok"}
        info = requests.get(f"{url}/api/v1/gateway", timeout=10).json()
        assert info["receipt_public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    finally:
        process.terminate()
        process.wait(30)


def test_shipped_config_without_manufacturer_ca_fails_with_one_line(
    gateway_root: Path, tmp_path: Path
) -> None:
    # A fresh install: the operator has not put the manufacturer's CA in place yet.
    config = gateway_root / "etc/tvpay/gateway.toml"
    result = _gateway(
        gateway_root, "--state-dir", str(tmp_path / "s"), "--config", str(config), "init"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "manufacturer-ca.pem" in lines[0]


def test_bad_gateway_setting_fails_with_one_line(gateway_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('session_ttl_seconds = "long"\n', encoding="utf-8")
    result = _gateway(
        gateway_root, "--state-dir", str(tmp_path / "s"), "--config", str(config), "init"
    )
    assert result.returncode == 2  # in the unit's RestartPreventExitStatus
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "session_ttl_seconds" in lines[0]


def test_several_workers_on_sqlite_are_refused_in_one_line(
    gateway_root: Path, initialised: list[str]
) -> None:
    result = _gateway(gateway_root, *initialised, "serve", "--port", "0", "--workers", "2")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PostgreSQL" in lines[0]
