"""The tvpay-gateway command: init, bills import, serve and receipt verify, as real processes."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import requests

from tests.gateway.helpers import Manufacturer

CLI = [sys.executable, "-m", "gateway.cli"]


def run(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--state-dir", str(state), *args], capture_output=True, text=True, timeout=120
    )


def test_init_makes_owner_only_files(tmp_path: Path, manufacturer: Manufacturer) -> None:
    state = tmp_path / "state"
    result = run(state, "init", "--manufacturer-ca", str(manufacturer.ca_path))
    assert result.returncode == 0, result.stderr
    for name in ("gateway.toml", "gateway.db", "operator-ca.key", "receipt.key"):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600, name


def test_bills_import_is_all_or_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run(state, "init").returncode == 0
    header = "biller_code,biller_name,utility,account_no,holder_name,address,bill_ref,period,amount_fen,currency,due_date\n"
    good = "SGCC-BJ,国网北京,electricity,1234567890,张伟,北京市朝阳区1号,R1,2025-05,12345,CNY,2025-06-20\n"
    bad = "SGCC-BJ,国网北京,electricity,1234567890,张伟,北京市朝阳区1号,R2,2025-06,-5,CNY,2025-07-20\n"
    (tmp_path / "bad.csv").write_text(header + good + bad, encoding="utf-8")
    refused = run(state, "bills", "import", str(tmp_path / "bad.csv"))
    assert refused.returncode == 2 and "row 2" in refused.stderr
    (tmp_path / "good.csv").write_text(header + good, encoding="utf-8")
    accepted = run(state, "bills", "import", str(tmp_path / "good.csv"))
    assert "1 new bills" in accepted.stdout


def test_demo_data_prints_households_with_holder_names(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run(state, "init").returncode == 0
    result = run(state, "demo-data", "--households", "2", "--seed", "7")
    households = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(households) == 2
    assert {a["utility"] for a in households[0]["accounts"]} == {
        "electricity",
        "water",
        "gas",
        "phone",
        "tv",
    }
    assert all(a["holder_name"] for h in households for a in h["accounts"])
    assert all(re.fullmatch(r"[0-9]{6}", a["bind_code"]) for h in households for a in h["accounts"])


def test_serve_prints_its_url_and_answers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run(state, "init").returncode == 0
    proc = subprocess.Popen(
        [*CLI, "--state-dir", str(state), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("gateway listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert requests.get(url + "/api/v1/health", timeout=10).json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)


def test_receipt_verify_accepts_a_genuine_qr_and_refuses_a_forged_one(tmp_path: Path) -> None:
    from gateway.keys import ensure_keys
    from gateway.receipts import SignedReceipt, sign_receipt, to_qr

    keys = ensure_keys(tmp_path, "gw")
    (tmp_path / "pub.pem").write_text(keys.receipt_public_pem)
    receipt = SignedReceipt(
        -7,
        "gw",
        "rcp_" + "1" * 32,
        "pay_" + "2" * 32,
        "SGCC-BJ",
        "******7890",
        "R1",
        "2025-05",
        12345,
        "CNY",
        1_750_000_000,
        "TVP1",
        3,
        "ab" * 32,
    )
    qr = to_qr(receipt, sign_receipt(keys.receipt_key, receipt))
    ok = run(tmp_path, "receipt", "verify", qr, "--public-key", str(tmp_path / "pub.pem"))
    assert ok.returncode == 0 and "amount_fen: 12345" in ok.stdout
    # The genuine signature on a receipt whose amount was changed.
    forged = to_qr(replace(receipt, amount_fen=1), sign_receipt(keys.receipt_key, receipt))
    bad = run(tmp_path, "receipt", "verify", forged, "--public-key", str(tmp_path / "pub.pem"))
    assert bad.returncode == 1


def test_receipt_verify_fetches_the_key_from_a_tls_gateway_with_its_ca(tmp_path: Path) -> None:
    from emulator.stack.tls import ensure_tls

    state = tmp_path / "state"
    assert run(state, "init").returncode == 0
    tls = ensure_tls(tmp_path / "tls")
    tls_flags = ["--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key)]
    proc = subprocess.Popen(
        [*CLI, "--state-dir", str(state), "serve", "--port", "0", *tls_flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().split()[-1]
        assert url.startswith("https://")
        qr = "TVPAYR1.AAAA"
        untrusted = run(state, "receipt", "verify", qr, "--gateway", url)
        assert untrusted.returncode == 2 and "--ca-file" in untrusted.stderr
        trusted = run(
            state, "receipt", "verify", qr, "--gateway", url, "--ca-file", str(tls.ca_cert)
        )
        assert trusted.returncode == 1 and "receipt INVALID" in trusted.stdout, trusted.stderr
    finally:
        proc.terminate()
        proc.wait(10)
