"""Opening the payment journal at start: a first start, a sound journal, or damage dealt with.

A first start is no journal file and no marker saying there was one. Anything else that is not
a sound, writable journal is damage, found here and not at the household's first payment:

- the damaged file is moved aside (``journal.sqlite3.damaged-<UTC time>``, with its ``-wal``),
  kept for staff, never deleted;
- every payment row still intact in it (journal_salvage) goes into a new journal, so signed
  authorizations are resent and open payments keep their payment id;
- if the file cannot be moved or a new journal cannot be written, the rows are kept in memory
  instead: signed payments are still sent, but no new payment is signed (PayingPaused) while
  nothing could keep its record;
- one log line says what happened, and the report tells the app which notice to show.

A marker file written next to the journal when it is first created tells a journal that went
missing from a box that never had one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tvapp.journal import (
    Journal,
    JournalCorrupt,
    JournalError,
    JournalUnwritable,
    create_journal,
    fsync_dir,
)
from tvapp.journal_salvage import salvage

log = logging.getLogger("tvapp.journal")

# What start-up found (JournalReport.condition).
SOUND = "sound"
FIRST_START = "first_start"
MISSING = "missing"  # the marker says a journal existed; it is gone
DAMAGED = "damaged"  # moved aside; some payments recovered from it
DAMAGED_EMPTY = "damaged_empty"  # moved aside; nothing in it could be recovered
UNWRITABLE = "unwritable"  # cannot be written nor replaced: paying is paused


@dataclass(frozen=True, slots=True)
class JournalReport:
    condition: str
    reason: str = ""  # what was wrong, for the log
    kept_as: str = ""  # file name the damaged journal was moved to
    recovered: int = 0  # payments recovered into the new journal
    rejected: int = 0  # payment records found damaged (failed their checksum): not resent

    @property
    def needs_notice(self) -> bool:
        """Whether the household must be told (and staff warned) before anything else."""
        return self.condition not in (SOUND, FIRST_START)


def marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".created")


def open_journal(path: Path) -> tuple[Journal, JournalReport]:
    """The journal to use and what was found; never raises for a damaged journal."""
    marker = marker_path(path)
    if not (path.exists() or path.is_symlink()):
        journal = Journal(path)
        if marker.exists():
            log.error(
                "event=journal_missing path=%s marker=%s: the payment journal is gone; signed "
                "payments may be outstanding, check this box's payments with the gateway",
                path,
                marker,
            )
            return journal, JournalReport(MISSING, "the journal file is missing")
        _write_marker(marker)
        log.info("event=journal_created path=%s", path)
        return journal, JournalReport(FIRST_START)
    try:
        journal = Journal(path)
    except (JournalCorrupt, JournalUnwritable) as exc:
        return _replace_damaged(path, exc.reason)
    if not marker.exists():  # a journal from before markers
        _write_marker(marker)
    return journal, JournalReport(SOUND)


def _replace_damaged(path: Path, reason: str) -> tuple[Journal, JournalReport]:
    kept = _move_aside(path)
    found = salvage(kept or path)
    journal: Journal | None = None
    if kept is not None:
        try:
            create_journal(path, found.entries, f"recovered from {kept.name}")
            journal = Journal(path)
        except (OSError, JournalError) as exc:
            reason = f"{reason}; a new journal cannot be written either: {exc}"
    if journal is None:
        journal = Journal.stand_in(found.entries)
        condition = UNWRITABLE
    else:
        condition = DAMAGED if found.entries else DAMAGED_EMPTY
    signed = sum(e.state == "signed" for e in found.entries)
    log.error(
        "event=journal_damaged path=%s reason=%s kept_as=%s recovered=%d signed=%d rejected=%d "
        "paying=%s: payments recovered from it are resent; check this box's payments with the "
        "gateway",
        path,
        reason,
        kept.name if kept else "-",
        len(found.entries),
        signed,
        found.rejected,
        "yes" if journal.durable else "paused",
    )
    report = JournalReport(
        condition, reason, kept.name if kept else "", len(found.entries), found.rejected
    )
    return journal, report


def _move_aside(path: Path) -> Path | None:
    """Rename the damaged journal (and its WAL files) out of the way; None if it cannot be."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 1
    while target.exists() or target.is_symlink():
        number += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
    try:
        os.rename(path, target)
    except OSError as exc:
        log.warning("event=journal_not_moved path=%s error=%s", path, exc.strerror)
        return None
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            # The WAL may hold the newest commits: it stays with the file it belongs to.
            try:
                os.rename(companion, target.with_name(target.name + suffix))
            except OSError as exc:
                log.warning("event=journal_wal_not_moved path=%s error=%s", companion, exc)
    fsync_dir(path.parent)
    return target


def _write_marker(marker: Path) -> None:
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    marker.write_text(f"payment journal created {created}\n")
    fsync_dir(marker.parent)


def unknown_signatures(journal: Journal, dongle_counter: int) -> int:
    """How many payment signatures the dongle made that this journal has no record of."""
    return max(0, dongle_counter - journal.highest_counter())
