"""`batch FILE.csv`: every dongle on the hub at once, with a progress bar each and a summary."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from dongle.staff.batch import (
    BatchRunner,
    ResultFile,
    RowResult,
    assign,
    check_result_path,
    read_rows,
    result_path,
)
from dongle.staff.context import Context
from dongle.staff.daemon import translated
from dongle.staff.errors import EXIT_FAILED, EXIT_INTERRUPTED
from dongle.staff.log import log
from dongle.staff.provision import STEPS, Step, fail_after_from_env

STATUS_STYLE = {"active": "green", "failed": "red", "interrupted": "yellow"}


def row_json(result: RowResult) -> dict[str, Any]:
    return {
        "line": result.row.line,
        "serial": result.serial,
        "account": result.row.account,
        "status": result.status,
        "key_rev": result.key_rev,
        "puk": result.puk,
        "pin": result.pin,
        "error": result.error,
    }


class _Bars:
    """One progress bar per dongle, advanced from the provisioning threads."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def add(self, serial: str, account: str) -> None:
        self._tasks[serial] = self._progress.add_task(
            f"{serial} → {account}", total=len(STEPS), step="waiting"
        )

    def observe(self, serial: str, step: Step, what: str) -> None:
        task = self._tasks.get(serial)
        if task is None:
            return
        if what == "start":
            self._progress.update(task, step=str(step))
        else:
            self._progress.advance(task)

    def finish(self, result: RowResult) -> None:
        task = self._tasks.get(result.serial or "")
        if task is not None:
            self._progress.update(task, step=result.status)


def run_batch(args: argparse.Namespace, ctx: Context) -> int:
    source = Path(args.file)
    rows = read_rows(source, ctx.config)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_path = Path(args.out) if args.out else result_path(source, stamp)
    check_result_path(out_path)
    fail_after = fail_after_from_env()
    cas = ctx.cas()
    with translated():
        devices = ctx.daemon().devices()
    with ctx.new_gateway() as gateway:
        rows = assign(rows, devices, gateway)
    ctx.close()  # each row opens its own connection, so its own lease

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[step]}"),
        console=ctx.out.errors,
        disable=not ctx.out.errors.is_terminal,
    )
    bars = _Bars(progress)
    for row in rows:
        if row.serial:
            bars.add(row.serial, row.account)
    result_file = ResultFile.create(out_path)  # before any dongle is changed: it will hold PUKs
    runner = BatchRunner(
        make_client=ctx.new_daemon,
        make_gateway=ctx.new_gateway,
        cas=cas,
        observe=bars.observe,
        record=result_file.append,
        fail_after=fail_after,
        jobs=args.jobs or ctx.config.jobs,
        lease_wait=args.wait,
    )
    started = time.monotonic()
    with progress:
        results = runner.run(rows)
        for result in results:
            bars.finish(result)
    seconds = time.monotonic() - started
    result_file.finish(results)
    written = result_file.path
    ok = sum(r.status == "active" for r in results)
    log(
        "batch.done",
        rows=len(results),
        active=ok,
        failed=len(results) - ok,
        seconds=round(seconds, 2),
    )

    def render(console: Console) -> None:
        table = Table("line")
        for name in ("serial", "account", "status", "key rev", "PUK", "PIN"):
            table.add_column(name, no_wrap=True)  # codes are copied by hand: never split them
        for r in results:
            style = STATUS_STYLE.get(r.status, "")
            table.add_row(
                str(r.row.line),
                r.serial or "-",
                r.row.account,
                f"[{style}]{r.status}[/]",
                "" if r.key_rev is None else str(r.key_rev),
                r.puk or "",
                r.pin or "",
            )
        console.print(table)
        for r in results:
            if r.error:  # below the table: a sentence is unreadable in a narrow column
                console.print(f"line {r.row.line} ({r.serial or 'no dongle'}): {escape(r.error)}")
        console.print(
            f"{ok} of {len(results)} dongles provisioned in {seconds:.1f} s. Results with the "
            f"PUKs (and generated PINs) are in {written} (readable only by you): hand each "
            "household its codes, then store or destroy the file as your procedure says."
        )

    data = {
        "rows": [row_json(r) for r in results],
        "active": ok,
        "failed": len(results) - ok,
        "seconds": round(seconds, 3),
        "result_file": str(written),
    }
    ctx.out.result(data, render)
    if runner.interrupted or any(r.status == "interrupted" for r in results):
        return EXIT_INTERRUPTED
    return 0 if ok == len(results) else EXIT_FAILED
