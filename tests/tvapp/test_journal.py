"""The payment journal: forward-only steps, one open payment per bill, durable and private."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from tvapp.journal import (
    BillAlreadyInProgress,
    Journal,
    JournalCorrupt,
    JournalTransitionError,
    PayingPaused,
)

FIELDS = {"payment_id": "pay_1", "challenge": "AAAA"}
AUTH = {"dongle_id": "TVP1", "key_rev": 1, "counter": 7, "signature": "c2ln"}


def _signed(journal: Journal) -> str:
    entry = journal.begin("bill_1", 12345, "CNY")
    journal.record_created(entry.local_id, "pay_1", FIELDS, "2099-01-01T00:00:00Z")
    journal.record_signing(entry.local_id)
    journal.record_signed(entry.local_id, AUTH)
    return entry.local_id


def test_a_payment_moves_through_every_step_and_keeps_them(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    local_id = _signed(journal)
    journal.record_succeeded(local_id, {"receipt_no": "rcp_1"})
    entry = journal.get(local_id)
    assert entry.state == "succeeded" and entry.authorization == AUTH
    assert [s[0] for s in journal.steps(local_id)] == [
        "intent", "created", "signing", "signed", "succeeded",
    ]  # fmt: skip


def test_states_never_move_backwards(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    local_id = _signed(journal)
    with pytest.raises(JournalTransitionError):
        journal.record_signing(local_id)
    with pytest.raises(JournalTransitionError):
        journal.record_abandoned(local_id, "a signed payment is never abandoned")
    assert journal.get(local_id).state == "signed"


def test_a_bill_with_an_open_payment_gets_no_second_one(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.begin("bill_1", 100, "CNY")
    with pytest.raises(BillAlreadyInProgress, match="finish that one"):
        journal.begin("bill_1", 100, "CNY")


def test_after_a_final_state_the_bill_can_be_paid_again(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    first = journal.begin("bill_1", 100, "CNY")
    journal.record_abandoned(first.local_id, "expired")
    assert journal.begin("bill_1", 100, "CNY").idempotency_key != first.idempotency_key


def test_signed_payments_survive_a_restart_for_resubmission(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    local_id = _signed(journal)
    journal.close()
    reopened = Journal(tmp_path / "j.db")
    assert [e.local_id for e in reopened.unconfirmed()] == [local_id]
    assert reopened.open_for_bill("bill_1").authorization == AUTH


def test_the_journal_file_is_private(tmp_path: Path) -> None:
    Journal(tmp_path / "j.db")
    assert stat.S_IMODE((tmp_path / "j.db").stat().st_mode) == 0o600


def test_a_garbage_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalCorrupt, match="is damaged"):
        Journal(path)
    assert path.read_bytes().startswith(b"not a database")


def test_a_journal_that_cannot_keep_records_signs_nothing_new(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    local_id = _signed(journal)
    stand_in = Journal.stand_in(journal.entries())
    with pytest.raises(PayingPaused, match="paying is paused"):
        stand_in.begin("bill_2", 100, "CNY")
    # What was already signed is still sent, and its outcome noted for this run.
    assert stand_in.record_succeeded(local_id, {"receipt_no": "r"}).state == "succeeded"


def test_a_journal_from_before_checksums_is_sealed_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    local_id = _signed(Journal(path))
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("ALTER TABLE payments DROP COLUMN checksum")
    old.execute("DROP TABLE meta")
    old.execute("PRAGMA application_id = 0")
    old.execute("PRAGMA user_version = 0")
    old.close()
    reopened = Journal(path)
    assert reopened.get(local_id).authorization == AUTH
    reopened.close()
    Journal(path).close()  # sealed: it opens again as a current journal
