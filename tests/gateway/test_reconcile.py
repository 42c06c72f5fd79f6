"""Reconciliation with the utility's statement and settlement, through the real command line
(its own process), the utility simulator process and the dispatcher process, on SQLite and
PostgreSQL. The statements are the files the simulator serves, edited as the tests say."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.ledger import balance
from gateway.ledger.accounts import SETTLEMENTS, payable
from tests.gateway.reconcile_env import (
    ack_lost,
    cli,
    payment_row,
    reconcile,
    report_count,
    statement,
    utility_day,
)
from tests.gateway.test_writeoff import env
from tests.gateway.writeoff_env import BILLER, WriteoffEnv

OTHER_PAYMENT = "pay_" + "e" * 32
__all__ = ["env"]  # the fixture, used by name


def _lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def _write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_bytes("".join(line + end for line in lines).encode())
    return path


def _row(line: str, **changes: str) -> str:
    names = ["utility_ref", "payment_id", "account_no", "bill_ref", "amount_fen", "currency"]
    fields = dict(zip([*names, "written_off_at"], line.split(","), strict=True))
    return ",".join({**fields, **changes}.values())


def _three_payments(env: WriteoffEnv) -> tuple[str, str, str]:
    """matched: credited both sides; lost: written off there, still succeeded here; resent:
    credited here but (in the edited statement) unknown there."""
    matched, _ = env.pay()
    resent, _ = env.pay()
    assert env.dispatch() == {"delivered": 2, "failed": 0}
    lost, _ = env.pay()
    ack_lost(env, lost)
    return matched, lost, resent


def test_each_report_kind_and_its_resolution(env: WriteoffEnv, tmp_path: Path) -> None:
    matched, lost, resent = _three_payments(env)
    day = utility_day(env)
    header, *rows = _lines(statement(env, day))
    by_id = {r.split(",")[1]: r for r in rows}
    stranger = _row(by_id[matched], payment_id=OTHER_PAYMENT, utility_ref="UT-STRANGER")
    edited = [
        header,
        by_id[lost],
        _row(by_id[matched], amount_fen="1"),  # amount differs
        stranger,  # theirs, not ours
        stranger,  # and listed twice
    ]
    report = reconcile(env, BILLER, day, _write(tmp_path / "s.csv", edited))
    assert report["counts"] == {
        "matched": 0,
        "credited": 1,
        "missing_there": 1,
        "missing_here": 1,
        "mismatch": 1,
        "duplicate": 1,
    }
    kinds = {(f["kind"], f["key"]) for f in report["findings"]}
    assert kinds == {
        ("credited", lost),
        ("missing_there", resent),
        ("missing_here", OTHER_PAYMENT),
        ("mismatch", matched),
        ("duplicate", OTHER_PAYMENT),
    }
    assert report["resolved"] == 2
    # The ack that was lost: credited with the utility's reference, as the ack would have.
    row = payment_row(env, lost)
    assert (row.status, row.utility_ref) == ("credited", by_id[lost].split(",")[0])
    # Ours, not theirs: the write-off goes out again, and the utility answers as before (the
    # lost ack's own message is still queued too, and changes nothing now).
    assert env.outbox(resent).delivered_at is None
    assert env.dispatch() == {"delivered": 2, "failed": 0}
    assert payment_row(env, lost).utility_ref == by_id[lost].split(",")[0]
    assert payment_row(env, resent).status == "credited"
    # Theirs, not ours: reported only, never created.
    assert payment_row(env, OTHER_PAYMENT) is None
    assert env.ledger_problems() == []

    listed = env.gw.staff("GET", "/reconciliations").json()["reconciliations"]
    assert [r["id"] for r in listed] == [report["id"]]
    shown = env.gw.staff("GET", f"/reconciliations/{report['id']}").json()
    assert shown["counts"] == report["counts"] and len(shown["findings"]) == 5
    assert env.gw.staff("GET", "/reconciliations/rec_" + "0" * 32).status_code == 404


def test_the_true_statement_matches_and_rerunning_it_changes_nothing(
    env: WriteoffEnv, tmp_path: Path
) -> None:
    _three_payments(env)
    day = utility_day(env)
    path = tmp_path / "statement.csv"
    path.write_bytes(statement(env, day))
    first = reconcile(env, BILLER, day, path)
    assert first["counts"]["matched"] == 2 and first["counts"]["credited"] == 1
    assert sum(first["counts"].values()) == 3 and first["resolved"] == 1
    again = reconcile(env, BILLER, day, path)
    assert again["id"] == first["id"] and again["replayed"] is True
    assert report_count(env) == 1
    summary = cli(env, "reconcile", "--biller", BILLER, "--date", day, str(path))
    assert summary.returncode == 0 and "2 matched" in summary.stdout


def test_bom_crlf_and_reordered_rows_and_columns_are_the_same_statement(
    env: WriteoffEnv, tmp_path: Path
) -> None:
    env.pay()
    env.pay()
    assert env.dispatch() == {"delivered": 2, "failed": 0}
    day = utility_day(env)
    header, *rows = _lines(statement(env, day))
    order = [6, 5, 4, 3, 2, 1, 0]
    swap = lambda line: ",".join(line.split(",")[i] for i in order)  # noqa: E731
    lines = [swap(header), *(swap(r) for r in reversed(rows))]
    path = tmp_path / "windows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(f"{line}\r\n" for line in lines).encode())
    report = reconcile(env, BILLER, day, path)
    assert report["counts"]["matched"] == 2 and sum(report["counts"].values()) == 2


HOSTILE = {
    "malformed amount": (lambda good: [*good, _row(good[1], amount_fen="12.50")], 3),
    "negative amount": (lambda good: [*good, _row(good[1], amount_fen="-5")], 3),
    "wrong field count": (lambda good: [*good, good[1] + ",extra"], 3),
    "wrong column set": (lambda good: [good[0].replace("bill_ref", "bill"), *good[1:]], 1),
    "huge field": (lambda good: [*good, _row(good[1], bill_ref="B" * 5000)], 3),
    "broken quote": (lambda good: [*good, '"unterminated,' + good[1]], 3),
    "another day": (lambda good: [*good, _row(good[1], written_off_at="86400")], 3),
    "empty line": (lambda good: [*good, ""], 3),
}


def _good(env: WriteoffEnv) -> tuple[str, list[str], str]:
    """A statement whose first row would credit a succeeded payment if anything were written."""
    lost, _ = env.pay()
    ack_lost(env, lost)
    day = utility_day(env)
    return day, _lines(statement(env, day)), lost


def _refused(
    env: WriteoffEnv, lost: str, done: subprocess.CompletedProcess[str], line: int
) -> None:
    assert done.returncode == 2, done.stdout
    assert f"line {line}:" in done.stderr, done.stderr
    assert report_count(env) == 0
    assert payment_row(env, lost).status == "succeeded"  # nothing half-written


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_statement_is_refused_with_its_line(
    env: WriteoffEnv, tmp_path: Path, name: str
) -> None:
    day, good, lost = _good(env)
    build, line = HOSTILE[name]
    path = _write(tmp_path / "bad.csv", build(good))
    _refused(env, lost, cli(env, "reconcile", "--biller", BILLER, "--date", day, str(path)), line)


def test_cut_last_line_and_non_utf8_are_refused(env: WriteoffEnv, tmp_path: Path) -> None:
    day, good, lost = _good(env)
    cut = tmp_path / "cut.csv"
    cut.write_bytes(("\n".join(good) + "\n" + good[1][:30]).encode())
    done = cli(env, "reconcile", "--biller", BILLER, "--date", day, str(cut))
    _refused(env, lost, done, 3)
    assert "was cut" in done.stderr  # said as such, not as a malformed row
    latin = tmp_path / "latin.csv"
    latin.write_bytes(("\n".join(good) + "\n").encode() + _row(good[1]).encode() + b"\xe9\n")
    done = cli(env, "reconcile", "--biller", BILLER, "--date", day, str(latin))
    _refused(env, lost, done, 3)
    assert "not UTF-8" in done.stderr
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _refused(env, lost, cli(env, "reconcile", "--biller", BILLER, "--date", day, str(empty)), 1)


def test_statement_of_another_biller_or_date_is_refused(env: WriteoffEnv, tmp_path: Path) -> None:
    day, good, lost = _good(env)
    path = _write(tmp_path / "s.csv", good)
    done = cli(env, "reconcile", "--biller", "TEST-WATER", "--date", day, str(path))
    _refused(env, lost, done, 2)
    assert BILLER in done.stderr
    _refused(
        env, lost, cli(env, "reconcile", "--biller", BILLER, "--date", "2020-01-01", str(path)), 2
    )
    done = cli(env, "reconcile", "--biller", BILLER, "--date", "yesterday", str(path))
    assert done.returncode == 2 and "YYYY-MM-DD" in done.stderr


def test_settlement_pays_the_net_once_and_the_ledger_stays_sound(
    env: WriteoffEnv, tmp_path: Path
) -> None:
    kept, _ = env.pay()
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    refunded, _ = env.pay()  # refunded before the utility heard of it: nothing to settle
    done = cli(env, "refund", refunded, "--reason", "wrong bill")
    assert done.returncode == 0, done.stderr
    amount = payment_row(env, kept).amount_fen
    day = utility_day(env)
    first = cli(env, "settle", "--date", day, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == [
        {
            "biller": BILLER,
            "day": day,
            "amount_fen": amount,
            "currency": "CNY",
            "status": "settled",
            "ref": f"stl:{day}:{BILLER}",
            "txn_id": json.loads(first.stdout)[0]["txn_id"],
        }
    ]
    again = json.loads(cli(env, "settle", "--date", day, "--json").stdout)
    assert again[0]["status"] == "already" and again[0]["amount_fen"] == amount
    read = env.gw.ctx.db.read
    assert read(lambda s: (balance(s, payable(BILLER)), balance(s, SETTLEMENTS))) == (0, amount)
    assert env.ledger_problems() == []
    table = cli(env, "settle", "--date", day)
    assert table.returncode == 0 and "already" in table.stdout
    assert cli(env, "ledger", "check").returncode == 0


def test_settlement_of_an_earlier_day_takes_nothing_collected_later(env: WriteoffEnv) -> None:
    env.pay()
    day = utility_day(env)
    earlier = cli(env, "settle", "--date", "2020-01-01", "--json")
    assert json.loads(earlier.stdout)[0]["status"] == "nothing"
    later = json.loads(cli(env, "settle", "--date", day, "--json").stdout)
    assert later[0]["status"] == "settled"
    assert env.ledger_problems() == []
