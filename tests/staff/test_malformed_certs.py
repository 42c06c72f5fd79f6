"""Dongles whose factory attestation certificate is malformed, on the real bench (virtual dongles,
daemon, gateway): `verify` and `provision` refuse them in one line with exit code 3, and a batch
with one among good dongles provisions the good ones and keeps every PUK in its result file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.firmware.factory import ManufacturerCA, manufacture
from protocol import pki
from protocol.errors import DongleError
from protocol.messages import Status
from protocol.signing import load_public_key
from tests.fixtures.malformed_certs import CASES, Case, by_name
from tests.staff.harness import PIN, Bench, staff_bench

# The firmware stores one certificate. Garbage, truncated, PEM-encoded and wrongly signed ones
# were refused in one line before; the table is the rest.
FROM_THE_FACTORY = [
    case
    for case in CASES
    if case.single
    and case.name not in {"garbage_der", "pem_not_der", "truncated", "signed_by_another_key"}
]
BAD = {case.name: f"TVP0000BAD{index:03X}" for index, case in enumerate(FROM_THE_FACTORY)}
GOOD_DONGLES = 8


def make_bad_dongles(directory: Path, genuine: ManufacturerCA) -> None:
    for case in FROM_THE_FACTORY:

        def faulty(
            ca: ManufacturerCA, serial: str, key: ec.EllipticCurvePublicKey, case: Case = case
        ) -> bytes:
            return case.build(ca.authority, key, serial)[0]

        manufacture(directory, genuine, BAD[case.name], faulty)


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with staff_bench(count=len(BAD) + GOOD_DONGLES, prepare=make_bad_dongles) as running:
        running.claim(list(BAD.values()))
        yield running


def one_line_error(stderr: str) -> str:
    """The tool's message to a person: one line, beside its key=value log events."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("ts=")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize("case", FROM_THE_FACTORY, ids=lambda c: c.name)
def test_verify_refuses_a_malformed_factory_chain_in_one_line(bench: Bench, case: Case) -> None:
    result = bench.tool("verify", "--serial", BAD[case.name])
    assert result.rc == 3, result.stderr
    line = one_line_error(result.stderr)
    assert BAD[case.name] in line and case.says in line


@pytest.mark.parametrize(
    "name", ["duplicate_extension", "unknown_critical_extension", "leaf_claims_ca", "no_key_usage"]
)
def test_provision_refuses_before_changing_anything(bench: Bench, name: str) -> None:
    serial = BAD[name]
    household = bench.household()
    result = bench.tool("provision", "--account", household, "--pin", PIN, "--serial", serial)
    assert result.rc == 3, result.stderr
    assert "genuineness check" in one_line_error(result.stderr)
    assert bench.info(serial).state == "factory"
    assert bench.gateway.dongle(serial) is None


@pytest.mark.parametrize(
    "name", ["duplicate_extension", "unknown_critical_extension", "leaf_claims_ca", "no_key_usage"]
)
def test_the_dongle_refuses_a_malformed_device_certificate(bench: Bench, name: str) -> None:
    serial = bench.take()
    operator = pki.make_ca(pki.subject_name("Operator CA"), days=30)
    with bench.daemon.client() as client, client.acquire(serial):
        payment_key = load_public_key(client.generate_key(serial)["public_key"])
        (der,) = by_name(name).build(operator, payment_key, serial)
        with pytest.raises(DongleError) as caught:
            client.write_cert(der, serial)
    assert caught.value.status == Status.INVALID_PARAMETER
    assert "'certificate'" in str(caught.value)
    assert bench.info(serial).state == "key_generated"


def read_result(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_batch_with_a_malformed_dongle_provisions_the_others(bench: Bench, tmp_path: Path) -> None:
    first, last = bench.take(2)
    bad = BAD["duplicate_extension"]
    source = tmp_path / "dongles.csv"
    lines = [f"{serial},{bench.household()}" for serial in (first, bad, last)]
    source.write_text("\n".join(["serial,account", *lines]) + "\n", encoding="utf-8")
    out = tmp_path / "result.csv"

    result = bench.tool("--json", "batch", str(source), "--out", str(out))

    assert result.rc == 1, result.stderr
    assert "Traceback" not in result.stderr
    rows = result.json["rows"]
    assert [r["status"] for r in rows] == ["active", "failed", "active"]
    error = rows[1]["error"]
    assert "extension 2.5.29.19 twice" in error and "\n" not in error
    assert bench.info(bad).state == "factory"
    written = read_result(out)
    assert [w["serial"] for w in written] == [first, bad, last]
    assert [w["status"] for w in written] == ["active", "failed", "active"]
    for row, line in zip(rows, written, strict=True):
        assert line["puk"] == (row["puk"] or "")
        if row["status"] == "active":
            assert len(line["puk"]) == 8 and line["pin"]
            assert bench.info(row["serial"]).state == "locked"
