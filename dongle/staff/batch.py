"""Batch provisioning: a CSV of rows, each dongle on the hub provisioned on its own thread.

Input rows are ``serial,account[,pin]`` with a header line. An empty serial or ``*`` means "the
next free dongle". A row without a PIN gets a generated initial PIN, written to the result file
beside the PUK. The whole file is checked before any dongle is touched. Each row runs with its
own daemon connection (so its own lease) and its own gateway session; one failing row never
stops the others. The result CSV is written 0600 and never over an existing file: it holds PUKs.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509

from dongle.client import DaemonClient
from dongle.model import DeviceInfo
from dongle.staff.codes import new_pin
from dongle.staff.config import StaffConfig
from dongle.staff.errors import StaffError, UsageError
from dongle.staff.gateway import StaffGateway
from dongle.staff.provision import (
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
FREE_STATES = ("key_generated", "certified", "factory")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    serial: str | None  # None: the next free dongle
    account: str
    pin: str | None  # None: generate an initial PIN


@dataclass(frozen=True, slots=True)
class RowResult:
    row: Row
    serial: str | None
    status: str  # active | failed | interrupted
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
    if header[:2] != ["serial", "account"] or header[2:] not in ([], ["pin"]):
        raise UsageError(f"{path}: the first line must be 'serial,account' or 'serial,account,pin'")
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
        pin = cells[2].strip() if len(cells) > 2 and cells[2].strip() else None
        if pin is not None:
            try:
                check_pin(pin)
            except PinPolicyError as exc:
                raise UsageError(f"{path} line {line}: {exc}") from None
        rows.append(Row(line, serial_or_none, account, pin))
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
    """Runs the rows concurrently; ``stop`` makes every row end at its next step."""

    make_client: Callable[[], DaemonClient]
    make_gateway: Callable[[], StaffGateway]
    cas: list[x509.Certificate]
    observe: Observer
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
        futures = [pool.submit(self._one, row) for row in rows]
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

    def _one(self, row: Row) -> RowResult:
        if row.serial is None:
            return RowResult(
                row,
                None,
                "failed",
                error="no free dongle for this row: plug in another factory-fresh dongle and "
                "rerun the batch",
                exit_code=1,
            )
        pin = row.pin or new_pin()
        generated = None if row.pin else pin
        try:
            client = self.make_client()
            try:
                with self.make_gateway() as gateway:
                    outcome = Provisioning(
                        client,
                        gateway,
                        self.cas,
                        Order(row.account, pin, row.serial),
                        observe=self._observe,
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
        raise UsageError(f"{path} already exists: it may hold PUKs; choose another --out")
    if not path.parent.is_dir():
        raise UsageError(f"the folder of {path} does not exist")


def write_results(path: Path, results: list[RowResult]) -> Path:
    """The result CSV, 0600, written to a temporary file then linked: never half a file.

    Returns where it went: ``path``, or the temporary file's name if ``path`` appeared in the
    meantime (the PUKs must survive either way).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(RESULT_COLUMNS)
            for r in results:
                writer.writerow(
                    [
                        r.serial or "",
                        r.row.account,
                        r.status,
                        "" if r.key_rev is None else r.key_rev,
                        r.puk or "",
                        r.pin or "",
                        r.error or "",
                    ]
                )
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    try:
        os.link(tmp, path)  # fails if the file appeared meanwhile: never overwrite PUKs
    except FileExistsError:
        return Path(tmp)
    os.unlink(tmp)
    return path
