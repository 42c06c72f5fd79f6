"""`batch`: many dongles at once, each on its own thread and lease; failures stay in their row."""

from __future__ import annotations

import csv
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.staff.harness import PIN, Bench, staff_bench


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    # Its own bench: "*" rows take whatever dongle is free, which must not be another test's.
    with staff_bench(count=16) as running:
        control = running.cable.control()
        control.unplug(running.forged)  # so "*" rows never pick the forgery
        control.close()
        running.wait_plugged(running.forged, plugged=False)
        yield running


def write_batch(tmp_path: Path, rows: list[str], header: str = "serial,account,pin") -> Path:
    path = tmp_path / "dongles.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def read_result(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_batch_provisions_named_and_next_free_dongles(bench: Bench, tmp_path: Path) -> None:
    named = bench.take()
    households = [bench.household() for _ in range(4)]
    source = write_batch(
        tmp_path,
        [
            f"{named},{households[0]},{PIN}",
            f"*,{households[1]},",
            f",{households[2]},135792",
            f"*,{households[3]},",
        ],
    )
    result = bench.tool("--json", "batch", str(source))
    assert result.rc == 0, result.stderr
    body = result.json
    rows = body["rows"]
    bench.claim([r["serial"] for r in rows])
    assert [r["status"] for r in rows] == ["active"] * 4
    assert rows[0]["serial"] == named
    assert len({r["serial"] for r in rows}) == 4
    assert [r["pin"] is None for r in rows] == [True, False, True, False]  # generated ones only
    for row in rows:
        assert bench.gateway.dongle(row["serial"])["household_no"] == row["account"]
        assert bench.pin_works(row["serial"], row["pin"] or (PIN if row is rows[0] else "135792"))
        assert bench.open_session(row["serial"]).status_code == 201

    result_file = body["result_file"]
    assert stat.S_IMODE(Path(result_file).stat().st_mode) == 0o600
    written = read_result(result_file)
    assert [w["serial"] for w in written] == [r["serial"] for r in rows]
    assert [w["puk"] for w in written] == [r["puk"] for r in rows]
    assert list(written[0]) == ["serial", "account", "status", "key_rev", "puk", "pin", "error"]


def test_a_failing_row_does_not_stop_the_others(bench: Bench, tmp_path: Path) -> None:
    good, unknown = bench.take(2)
    source = write_batch(
        tmp_path,
        [
            f"{unknown},3399999999,",
            f"{good},{bench.household()},",
            f"{bench.forged},{bench.household()},",
        ],
        header="serial,account",
    )
    control = bench.cable.control()
    control.plug(bench.forged)
    try:
        bench.wait_plugged(bench.forged)
        result = bench.tool("--json", "batch", str(source), "--out", str(tmp_path / "out.csv"))
    finally:
        control.unplug(bench.forged)
        control.close()
        bench.wait_plugged(bench.forged, plugged=False)
    assert result.rc == 1
    statuses = {r["serial"]: (r["status"], r["error"] or "") for r in result.json["rows"]}
    assert statuses[good][0] == "active"
    assert statuses[unknown][0] == "failed"
    assert "not known at the gateway" in statuses[unknown][1]
    assert "not made by a trusted manufacturer" in statuses[bench.forged][1]
    assert bench.info(unknown).state == "factory"
    written = {w["serial"]: w for w in read_result(str(tmp_path / "out.csv"))}
    assert written[unknown]["status"] == "failed"
    assert written[unknown]["error"]


def test_interrupted_batch_resumes_the_same_dongles(bench: Bench, tmp_path: Path) -> None:
    households = [bench.household() for _ in range(3)]
    source = write_batch(tmp_path, [f"*,{h}," for h in households], header="serial,account")
    env = bench.env(TVPAY_STAFF_FAIL_AFTER="register")
    first = bench.tool("--json", "batch", str(source), "--out", str(tmp_path / "1.csv"), env=env)
    assert first.rc == 130, first.stderr
    serials = [r["serial"] for r in first.json["rows"]]
    bench.claim(serials)
    assert [r["status"] for r in first.json["rows"]] == ["interrupted"] * 3
    for serial in serials:
        assert bench.gateway.dongle(serial)["status"] == "pending"
        assert bench.open_session(serial).status_code == 403

    again = bench.tool("--json", "batch", str(source), "--out", str(tmp_path / "2.csv"))
    assert again.rc == 0, again.stderr
    assert [r["serial"] for r in again.json["rows"]] == serials
    assert [r["status"] for r in again.json["rows"]] == ["active"] * 3
    for serial in serials:
        assert bench.open_session(serial).status_code == 201


def test_human_output_has_a_summary_table(bench: Bench, tmp_path: Path) -> None:
    serial = bench.take()
    source = write_batch(tmp_path, [f"{serial},{bench.household()},"], header="serial,account")
    result = bench.tool("batch", str(source), "--out", str(tmp_path / "r.csv"))
    assert result.rc == 0, result.stderr
    assert "1 of 1 dongles provisioned" in result.stdout
    assert serial in result.stdout
    assert "active" in result.stdout


def test_bad_file_is_refused_before_any_dongle_is_touched(bench: Bench, tmp_path: Path) -> None:
    serial = bench.take()
    source = write_batch(tmp_path, [f"{serial},{bench.household()},", "*,33-00,"])
    result = bench.tool("--json", "batch", str(source))
    assert result.rc == 2
    assert "line 3" in result.json["error"]["message"]
    assert bench.info(serial).state == "factory"


def test_a_dongle_listed_twice_is_refused(bench: Bench, tmp_path: Path) -> None:
    serial = bench.take()
    source = write_batch(tmp_path, [f"{serial},3300000001,", f"{serial},3300000002,"])
    result = bench.tool("--json", "batch", str(source))
    assert result.rc == 2
    assert "listed twice" in result.json["error"]["message"]


def test_wrong_header_is_refused(bench: Bench, tmp_path: Path) -> None:
    source = write_batch(tmp_path, ["TVP1,3300000001"], header="dongle,household")
    result = bench.tool("--json", "batch", str(source))
    assert result.rc == 2
    assert "first line" in result.json["error"]["message"]


def test_existing_result_file_is_never_overwritten(bench: Bench, tmp_path: Path) -> None:
    serial = bench.take()
    source = write_batch(tmp_path, [f"{serial},{bench.household()},"])
    existing = tmp_path / "result.csv"
    existing.write_text("serial,puk\nTVP1,12345678\n")
    result = bench.tool("--json", "batch", str(source), "--out", str(existing))
    assert result.rc == 2
    assert "already exists" in result.json["error"]["message"]
    assert existing.read_text() == "serial,puk\nTVP1,12345678\n"
    assert bench.info(serial).state == "factory"
