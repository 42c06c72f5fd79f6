"""The batch result file on the real bench (virtual dongles, daemon, gateway), with the runner in
this process so a row can die at an exact step: a PUK is on disk before its dongle is sent it,
a run that dies leaves every result so far and every locked dongle's PUK, and a row failing in
an unforeseen way fails alone."""

from __future__ import annotations

import base64
import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from dongle import pin_client
from dongle.staff.attestation import load_cas
from dongle.staff.batch import BatchRunner, ResultFile, Row
from dongle.staff.daemon import connect
from dongle.staff.gateway import StaffGateway
from dongle.staff.provision import Step
from protocol.errors import DonglePinBlocked, DonglePinInvalid
from protocol.pin import DongleKey
from tests.staff.harness import Bench, staff_bench


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with staff_bench(count=6) as running:
        yield running


def read_result(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def runner(bench: Bench, result_file: ResultFile, observe) -> BatchRunner:
    return BatchRunner(
        make_client=lambda: connect(bench.daemon.socket_path),
        make_gateway=lambda: StaffGateway(bench.gateway.url, bench.gateway.token),
        cas=load_cas([str(bench.cable.manufacturer_ca)]),
        observe=observe,
        record=result_file.append,
        jobs=2,
    )


def puk_opens(bench: Bench, serial: str, puk: str) -> bool:
    """Whether ``puk`` is the dongle's: block its PIN with wrong tries, unblock it with the PUK,
    then obtain a PIN token with the new PIN. The payment key comes from the gateway's registry."""
    record = bench.gateway.dongle(serial)
    assert record is not None
    dongle = DongleKey(serial, record["key_rev"], base64.b64decode(record["public_key"]))
    with bench.daemon.client() as client:
        while True:
            try:
                pin_client.obtain_pin_token(client, "975310", dongle)
            except DonglePinBlocked:
                break
            except DonglePinInvalid:
                continue
        pin_client.unblock_pin(client, puk, "135792", dongle)
        return len(pin_client.obtain_pin_token(client, "135792", dongle)) == 32


def test_a_batch_that_dies_mid_run_has_kept_every_locked_dongles_puk(
    bench: Bench, tmp_path: Path
) -> None:
    """The runner in this process, with the real daemon and gateway; a row dies (SystemExit, as
    close to a crash as a thread gets) once its dongle is locked, before activation."""
    doomed, other = bench.take(2)
    path = tmp_path / "result.csv"
    result_file = ResultFile.create(path)
    on_disk_at_lock: dict[str, list[dict[str, str]]] = {}

    def observe(serial: str, step: Step, what: str) -> None:
        if (step, what) == (Step.LOCK, "start"):
            on_disk_at_lock[serial] = [r for r in read_result(path) if r["serial"] == serial]
        if (serial, step, what) == (doomed, Step.ACTIVATE, "start"):
            raise SystemExit("the provisioning PC lost power")

    rows = [Row(2, doomed, bench.household(), None), Row(3, other, bench.household(), None)]
    with pytest.raises(SystemExit):
        runner(bench, result_file, observe).run(
            rows
        )  # never reaches ResultFile.finish: the file is as the crash left it

    for serial in (doomed, other):
        (locking,) = on_disk_at_lock[serial]  # on disk before LOCK was sent
        assert locking["status"] == "locking" and len(locking["puk"]) == 8 and locking["pin"]
    written = read_result(path)
    assert [w["status"] for w in written if w["serial"] == other] == ["locking", "active"]
    assert [w["status"] for w in written if w["serial"] == doomed] == ["locking"]
    assert bench.info(doomed).state == "locked"
    assert puk_opens(bench, doomed, on_disk_at_lock[doomed][0]["puk"])


def test_a_row_that_fails_unexpectedly_fails_alone(bench: Bench, tmp_path: Path) -> None:
    broken, fine = bench.take(2)
    path = tmp_path / "result.csv"
    result_file = ResultFile.create(path)

    def observe(serial: str, step: Step, what: str) -> None:
        if (serial, step, what) == (broken, Step.REGISTER, "start"):
            raise RuntimeError("a fault nobody foresaw")

    rows = [Row(2, broken, bench.household(), None), Row(3, fine, bench.household(), None)]
    results = runner(bench, result_file, observe).run(rows)
    result_file.finish(results)

    assert [r.status for r in results] == ["failed", "active"]
    assert "a fault nobody foresaw" in (results[0].error or "")
    assert [w["status"] for w in read_result(path)] == ["failed", "active"]
