"""Payment rows read back from a damaged journal file, record by record, without SQLite.

A damaged file may have no valid header, a cut-off end or a broken b-tree, and SQLite then
refuses to read any of it. The rows themselves are still on their pages: this reads every page
of the file (and of its write-ahead log, where the newest commits may still sit) as a SQLite
table leaf page, decodes each cell's record, and keeps a record only if it has the payment
table's columns and matches its own checksum. A row that fails its checksum is not trusted: it
is counted, never resent. The file is only read.

Page format: https://www.sqlite.org/fileformat2.html (b-tree pages, record format, WAL).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tvapp.journal import (
    COLUMNS,
    OPEN_STATES,
    TERMINAL_STATES,
    JournalEntry,
    entry_from_row,
    row_checksum,
)

DEFAULT_PAGE_SIZE = 4096  # what the journal is created with (tvapp/journal.py)
_TABLE_LEAF = 0x0D
_WAL_HEADER = 32
_WAL_FRAME_HEADER = 24
_PROGRESS = {state: rank for rank, state in enumerate((*OPEN_STATES, *TERMINAL_STATES))}


@dataclass(frozen=True, slots=True)
class Salvage:
    entries: list[JournalEntry]  # the newest intact version of each payment found
    rejected: int  # payment-shaped records that failed their checksum


class _Truncated(Exception):
    """A record runs past the end of its page."""


def salvage(path: Path) -> Salvage:
    """Every intact payment row in the journal file at ``path`` and its ``-wal`` file."""
    found: dict[str, JournalEntry] = {}
    rejected = 0
    for page in _pages(path):
        for values in _leaf_records(page):
            if len(values) != len(COLUMNS) + 1:
                continue  # a step, meta or schema row
            *row, checksum = values
            if checksum != row_checksum(row):
                rejected += 1
                continue
            try:
                entry = entry_from_row(dict(zip(COLUMNS, row, strict=True)))
            except (ValueError, TypeError):
                rejected += 1
                continue
            if entry.state not in _PROGRESS:
                rejected += 1
                continue
            known = found.get(entry.local_id)
            if known is None or _newer(entry, known):
                found[entry.local_id] = entry
    entries = sorted(found.values(), key=lambda e: (e.created_at, e.local_id))
    return Salvage(entries, rejected)


def _newer(entry: JournalEntry, than: JournalEntry) -> bool:
    """States only move forward: the further one is the later version of the row."""
    return (_PROGRESS[entry.state], entry.updated_at) > (_PROGRESS[than.state], than.updated_at)


def _pages(path: Path) -> list[tuple[bytes, int]]:
    """(page, offset of its b-tree header) for each page of the file and of its WAL."""
    data = _read(path)
    size = _page_size(data)
    pages = [(data[i : i + size], 100 if i == 0 else 0) for i in range(0, len(data), size)]
    wal = _read(path.with_name(path.name + "-wal"))
    if len(wal) >= _WAL_HEADER:
        wal_size = struct.unpack(">I", wal[8:12])[0]
        wal_size = wal_size if _plausible(wal_size) else size
        step = _WAL_FRAME_HEADER + wal_size
        for start in range(_WAL_HEADER, len(wal) - _WAL_FRAME_HEADER, step):
            number = struct.unpack(">I", wal[start : start + 4])[0]
            body = wal[start + _WAL_FRAME_HEADER : start + step]
            pages.append((body, 100 if number == 1 else 0))
    return pages


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # missing, a directory, unreadable: nothing to salvage from it
        return b""


def _page_size(data: bytes) -> int:
    if len(data) >= 18 and data.startswith(b"SQLite format 3\x00"):
        size = struct.unpack(">H", data[16:18])[0]
        size = 65536 if size == 1 else size
        if _plausible(size):
            return size
    return DEFAULT_PAGE_SIZE  # the header is gone: assume the size the journal is made with


def _plausible(size: int) -> bool:
    return 512 <= size <= 65536 and size & (size - 1) == 0


def _leaf_records(page_and_offset: tuple[bytes, int]) -> list[list[Any]]:
    page, at = page_and_offset
    if len(page) < at + 8 or page[at] != _TABLE_LEAF:
        return []
    cells = struct.unpack(">H", page[at + 3 : at + 5])[0]
    records = []
    for i in range(cells):
        pointer_at = at + 8 + 2 * i
        if pointer_at + 2 > len(page):
            break
        cell = struct.unpack(">H", page[pointer_at : pointer_at + 2])[0]
        try:
            records.append(_cell_record(page, cell))
        except (_Truncated, UnicodeDecodeError):
            continue  # this record is damaged; the page's other records may not be
    return records


def _cell_record(page: bytes, at: int) -> list[Any]:
    payload_size, at = _varint(page, at)
    _rowid, at = _varint(page, at)
    # A payload larger than a page's share spills to overflow pages: a journal's signed rows
    # are far smaller, so such a record is left out rather than followed.
    if payload_size > len(page) - 35 or at + payload_size > len(page):
        raise _Truncated()
    payload = page[at : at + payload_size]
    header_size, cursor = _varint(payload, 0)
    types = []
    while cursor < header_size:
        serial, cursor = _varint(payload, cursor)
        types.append(serial)
    body = header_size
    values = []
    for serial in types:
        value, body = _value(payload, body, serial)
        values.append(value)
    return values


def _value(payload: bytes, at: int, serial: int) -> tuple[Any, int]:
    widths = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}
    if serial == 0:
        return None, at
    if serial in widths:
        end = at + widths[serial]
        _need(payload, end)
        return int.from_bytes(payload[at:end], "big", signed=True), end
    if serial == 7:
        _need(payload, at + 8)
        return struct.unpack(">d", payload[at : at + 8])[0], at + 8
    if serial in (8, 9):
        return serial - 8, at
    if serial >= 12:
        length = (serial - 12) // 2
        _need(payload, at + length)
        raw = payload[at : at + length]
        return (raw.decode() if serial % 2 else raw), at + length
    raise _Truncated()  # 10 and 11 are reserved: not a record


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise _Truncated()


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """SQLite's big-endian varint: 7 bits a byte, the ninth byte gives all 8."""
    value = 0
    for _ in range(8):
        _need(data, at + 1)
        byte = data[at]
        at += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at
    _need(data, at + 1)
    return (value << 8) | data[at], at + 1
