"""Batch provisioning: a CSV of rows, each dongle on the hub provisioned on its own thread.

Input rows are ``serial,account[,pin][,role]`` with a header line. An empty serial or ``*`` means
"the next free dongle". A row without a PIN gets a generated initial PIN, written to the result
file beside the PUK; a row without a role is a home's dongle (``shop``: a shop's). The whole file is checked before any dongle is touched. Each row runs with its
own daemon connection (so its own lease) and its own gateway session; one failing row never
stops the others, whatever it fails with. The result CSV (ResultFile) is created 0600, never
over an existing file, and kept on disk as the rows go: it holds PUKs, and the PUK of a dongle
is in it, fsynced, before the dongle is sent it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509

from dongle.client import DaemonClient
from dongle.model import DeviceInfo
from dongle.staff.codes import new_pin
from dongle.staff.config import StaffConfig
from dongle.staff.errors import EXIT_FAILED, ResultFileError, StaffError, UsageError
from dongle.staff.gateway import StaffGateway
from dongle.staff.log import log
from dongle.staff.provision import (
    ROLES,
    Observer,
    Order,
    ProvisionFailed,
    Provisioning,
    Step,
)
from protocol.errors import PinPolicyError
from protocol.pin import check_pin

MAX_ROWS = 1000
RESULT_COLUMNS = ("serial", "account", "status", "key_rev", "puk", "pin", "error")
# Dongles a "*" row may take, best first: ones an earlier run left unlocked (they restart
# cleanly, and are not left lying around half-done), then factory-fresh ones.
OPTIONAL_COLUMNS = ([], ["pin"], ["role"], ["pin", "role"])  # after serial,account
FREE_STATES = ("key_generated", "certified", "factory")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    serial: str | None  # None: the next free dongle
    account: str
    pin: str | None  # None: generate an initial PIN
    role: str = "home"


@dataclass(frozen=True, slots=True)
class RowResult:
    row: Row
    serial: str | None
    status: str  # active | failed | interrupted; "locking" in the result file only (ResultFile)
    key_rev: int | None = None
    puk: str | None = None
    pin: str | None = None  # only when generated here
    error: str | None = None
    exit_code: int = 0


def read_rows(path: Path, config: StaffConfig) -> list[Row]:
    """Every row of the batch file, checked; UsageError naming the first bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text: save it as UTF-8 CSV") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:2] != ["serial", "account"] or header[2:] not in OPTIONAL_COLUMNS:
        raise UsageError(
            f"{path}: the first line must be 'serial,account', optionally followed by ',pin' "
            "and ',role'"
        )
    rows: list[Row] = []
    seen: set[str] = set()
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header) and not any(c.strip() for c in cells[len(header) :]):
            cells = cells[: len(header)]  # trailing empty cells, as spreadsheets write them
        if len(cells) != len(header):
            raise UsageError(f"{path} line {line}: expected {len(header)} columns")
        serial = cells[0].strip()
        serial_or_none = None if serial in ("", "*") else serial
        if serial_or_none in seen:
            raise UsageError(f"{path} line {line}: dongle {serial} is listed twice")
        if serial_or_none:
            seen.add(serial_or_none)
        try:
            account = config.check_account(cells[1])
        except UsageError as exc:
            raise UsageError(f"{path} line {line}: {exc}") from None
        named = dict(zip(header, (c.strip() for c in cells), strict=True))
        pin = named.get("pin") or None
        role = named.get("role") or "home"
        if role not in ROLES:
            raise UsageError(f"{path} line {line}: role is {' or '.join(ROLES)}, not {role!r}")
        if pin is not None:
            try:
                check_pin(pin)
            except PinPolicyError as exc:
                raise UsageError(f"{path} line {line}: {exc}") from None
        rows.append(Row(line, serial_or_none, account, pin, role))
        if len(rows) > MAX_ROWS:
            raise UsageError(f"{path}: more than {MAX_ROWS} rows; split the file")
    if not rows:
        raise UsageError(f"{path} has no rows to provision")
    return rows


def assign(rows: list[Row], devices: list[DeviceInfo], gateway: StaffGateway) -> list[Row]:
    """Give each "*" row a dongle: first one an earlier run registered for that household (so a
    rerun resumes the same dongles), else a free one (see FREE_STATES)."""
    named = {r.serial for r in rows if r.serial}
    plugged = {d.serial: d for d in devices if d.serial not in named and d.held_by is None}
    out: list[Row] = []
    for row in rows:
        if row.serial is None:
            pending = gateway.dongles(status="pending", household_no=row.account)
            mine = sorted(r.dongle_id for r in pending if r.dongle_id in plugged)
            if mine:
                row = replace(row, serial=mine[0])
                del plugged[mine[0]]
        out.append(row)
    free = sorted(
        (d for d in plugged.values() if d.state in FREE_STATES),
        key=lambda d: (FREE_STATES.index(d.state), d.serial),
    )
    return [
        replace(row, serial=free.pop(0).serial) if row.serial is None and free else row
        for row in out
    ]


@dataclass
class BatchRunner:
    """Runs the rows concurrently; ``stop`` makes every row end at its next step.

    ``record`` is given every row's result as it completes and, before a dongle is sent its
    PUK, a "locking" result with the PUK (ResultFile.append): it must store them durably.
    """

    make_client: Callable[[], DaemonClient]
    make_gateway: Callable[[], StaffGateway]
    cas: list[x509.Certificate]
    observe: Observer
    record: Callable[[RowResult], None]
    fail_after: Step | None = None
    jobs: int = 8
    lease_wait: float = 0.0

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.interrupted = False

    def run(self, rows: Iterable[Row]) -> list[RowResult]:
        """Every row's result, in order. Ctrl-C (in this, the main thread) stops the rows at
        their next step; they then report "interrupted" and ``interrupted`` is set."""
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="provision")
        futures = [pool.submit(self._recorded, row) for row in rows]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            self.interrupted = True
            self.stop.set()
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True)

    def _observe(self, serial: str, step: Step, what: str) -> None:
        self.observe(serial, step, what)
        if self.stop.is_set():
            raise KeyboardInterrupt  # Ctrl-C reached the main thread: stop at this step

    def _recorded(self, row: Row) -> RowResult:
        result = self._one(row)
        try:
            self.record(result)
        except ResultFileError as exc:
            # The row's result still reaches the summary on stdout; the file keeps what it has.
            log(
                "batch.record_failed", "error", line=row.line, serial=result.serial, reason=str(exc)
            )
        return result

    def _one(self, row: Row) -> RowResult:
        if row.serial is None:
            return RowResult(
                row,
                None,
                "failed",
                error="no free dongle for this row: plug in another factory-fresh dongle and "
                "rerun the batch",
                exit_code=EXIT_FAILED,
            )
        pin = row.pin or new_pin()
        generated = None if row.pin else pin
        sent: list[str] = []  # the PUK, once it was recorded for the dongle

        def keep_puk(serial: str, key_rev: int, puk: str) -> None:
            self.record(RowResult(row, serial, "locking", key_rev, puk, generated))
            sent.append(puk)

        try:
            client = self.make_client()
            try:
                with self.make_gateway() as gateway:
                    outcome = Provisioning(
                        client,
                        gateway,
                        self.cas,
                        Order(row.account, pin, row.serial, row.role),
                        observe=self._observe,
                        keep_puk=keep_puk,
                        fail_after=self.fail_after,
                        lease_wait=self.lease_wait,
                    ).run()
            finally:
                client.close()
        except ProvisionFailed as exc:
            return RowResult(
                row,
                exc.serial or row.serial,
                "interrupted" if exc.kind == "interrupted" else "failed",
                puk=exc.puk,
                pin=generated if exc.puk else None,
                error=str(exc),
                exit_code=exc.exit_code,
            )
        except StaffError as exc:
            return RowResult(row, row.serial, "failed", error=str(exc), exit_code=exc.exit_code)
        except Exception as exc:  # a fault in one row must not end the others, nor lose PUKs
            log("batch.row_crashed", "error", line=row.line, serial=row.serial, error=repr(exc))
            puk = sent[0] if sent else None  # where it stopped is unknown: it may be locked
            return RowResult(
                row,
                row.serial,
                "failed",
                puk=puk,
                pin=generated if puk else None,
                error=f"provisioning failed unexpectedly ({type(exc).__name__}: {exc}); "
                "check the dongle with 'tvpay-dongle info', rerun the row, and report it",
                exit_code=EXIT_FAILED,
            )
        return RowResult(
            row,
            outcome.serial,
            "active",
            key_rev=outcome.key_rev,
            puk=outcome.puk,
            pin=generated if outcome.puk else None,
        )


def result_path(batch_file: Path, stamp: str) -> Path:
    return batch_file.with_name(f"{batch_file.stem}.result-{stamp}.csv")


def check_result_path(path: Path) -> None:
    """Refuse before any dongle is touched when the result file could not be written."""
    if path.exists():
        raise _exists(path)
    if not path.parent.is_dir():
        raise UsageError(f"the folder of {path} does not exist")


class ResultFile:
    """The batch's result CSV, on disk from the first row to the last.

    Created 0600 and never over an existing file (it holds PUKs). ``append`` writes a line and
    fsyncs it before it returns, so whatever stops the run (a crash, a power cut) the file holds
    every result so far and the PUK of every dongle that was sent one: such a dongle has a
    "locking" line first, then its result, and its last line is what happened. ``finish``
    replaces it, atomically, with one line per batch row in the batch file's order.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: Path) -> ResultFile:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileExistsError:
            raise _exists(path) from None
        except OSError as exc:
            raise UsageError(f"cannot create the result file {path}: {exc.strerror}") from None
        file = cls(path, fd)
        file._write(fd, [RESULT_COLUMNS])
        _fsync_directory(path.parent)  # the file's name is durable too, not only its bytes
        return file

    def append(self, result: RowResult) -> None:
        """Add ``result`` as a line, on disk when this returns; ResultFileError if it cannot."""
        with self._lock:
            self._write(self._fd, [_line(result)])

    def finish(self, results: Sequence[RowResult]) -> None:
        """Rewrite the file as one line per row, in order. Should that fail, the appended file
        stays as it is: complete, only longer."""
        with self._lock:
            os.close(self._fd)
            tmp: str | None = None
            try:
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
                try:
                    self._write(fd, [RESULT_COLUMNS, *(_line(r) for r in results)])
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)  # complete and fsynced: the swap is all or nothing
                tmp = None
                _fsync_directory(self.path.parent)
            except (OSError, ResultFileError) as exc:
                log("batch.tidy_failed", "warning", path=str(self.path), reason=str(exc))
            finally:
                if tmp is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)

    def _write(self, fd: int, lines: Iterable[Sequence[object]]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(lines)
        data = buffer.getvalue().encode("utf-8")
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        except OSError as exc:
            raise ResultFileError(
                f"cannot write the result file {self.path} ({exc.strerror}): free space or fix "
                "the folder, then rerun the batch; dongles not yet sent a PUK were left unlocked"
            ) from None


def _exists(path: Path) -> UsageError:
    return UsageError(f"{path} already exists: it may hold PUKs; choose another --out")


def _line(r: RowResult) -> tuple[object, ...]:
    return (
        r.serial or "",
        r.row.account,
        r.status,
        "" if r.key_rev is None else r.key_rev,
        r.puk or "",
        r.pin or "",
        r.error or "",
    )


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
