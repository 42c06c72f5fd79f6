"""Reading the other side's CSV file one line at a time, refusing anything malformed.

Accepted: a UTF-8 BOM, LF or CRLF line ends, the columns in any order. Refused with the line
number: bytes that are not UTF-8, a line longer than ``MAX_LINE`` bytes, a header that is not
exactly the expected column set, a row with another number of fields, quotes or values out of
shape, and a last line without its line end (a file cut in transfer). The file's SHA-256 is taken
while reading, so a file reconciled twice is known as the same file.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from gateway.reconcile.rules import ReconcileError

MAX_LINE = 1024  # bytes; a statement line is under 200
BOM = b"\xef\xbb\xbf"

Fields = dict[str, str]


class FileFormatError(ReconcileError):
    """The file is not a well-formed statement; nothing was written."""


class CsvReader:
    """Iterate over the rows of ``stream`` as (line number, {column: value}); ``sha256`` is the
    digest of every byte read once iteration ends."""

    def __init__(self, stream: BinaryIO, columns: tuple[str, ...]) -> None:
        self._stream = stream
        self._columns = columns
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def _lines(self) -> Iterator[tuple[int, str]]:
        number = 0
        while True:
            raw = self._stream.readline(MAX_LINE + 1)
            if not raw:
                return
            number += 1
            self._hash.update(raw)
            if not raw.endswith(b"\n"):
                if len(raw) > MAX_LINE:
                    raise FileFormatError(f"longer than {MAX_LINE} bytes", number)
                raise FileFormatError(
                    "the last line has no line end: the file was cut; fetch it again", number
                )
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise FileFormatError("not UTF-8 text", number) from None
            yield number, text.removesuffix("\n").removesuffix("\r")

    def __iter__(self) -> Iterator[tuple[int, Fields]]:
        lines = self._lines()
        first = next(lines, None)
        if first is None:
            raise FileFormatError("the file is empty; expected a header line", 1)
        header = _split(first[1], 1)
        if sorted(header) != sorted(self._columns) or len(set(header)) != len(header):
            raise FileFormatError(
                f"columns {','.join(header)[:200]!r}; expected {','.join(self._columns)}", 1
            )
        for number, text in lines:
            fields = _split(text, number)
            if len(fields) != len(header):
                raise FileFormatError(f"{len(fields)} fields, expected {len(header)}", number)
            yield number, dict(zip(header, fields, strict=True))


def _split(text: str, number: int) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise FileFormatError(f"not a CSV line ({exc})", number) from None
    return rows[0] if rows else []


def field(row: Fields, name: str, number: int, check: Callable[[str], bool], shape: str) -> str:
    """``row[name]`` when ``check`` accepts it, else a FileFormatError saying the shape wanted."""
    value = row[name]
    if not check(value):
        raise FileFormatError(f"{name} {value[:40]!r} is not {shape}", number)
    return value


def amount(row: Fields, number: int) -> int:
    text = field(
        row, "amount_fen", number, lambda v: v.isascii() and v.isdigit() and len(v) <= 12, "fen"
    )
    value = int(text)
    if value <= 0:
        raise FileFormatError("amount_fen must be positive", number)
    return value


def currency(row: Fields, number: int) -> str:
    return field(
        row,
        "currency",
        number,
        lambda v: len(v) == 3 and v.isascii() and v.isupper() and v.isalpha(),
        "a currency like CNY",
    )
