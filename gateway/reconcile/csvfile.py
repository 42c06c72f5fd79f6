"""Reading the other side's CSV file one line at a time, refusing anything malformed.

Accepted: a UTF-8 BOM, LF or CRLF line ends, the columns in any order, quoted values. Refused
with the line number: bytes that are not UTF-8, a line longer than ``MAX_LINE`` bytes, a header
that is not exactly the expected column set, a row with another number of fields, broken quotes,
a value out of its column's shape, and a last line without its line end (a file cut in
transfer). A line is checked by one regular expression built from the header (the fast path);
only a line it refuses is split field by field, to say which value is wrong. The file's SHA-256 is taken
while reading, so a file reconciled twice is known as the same file.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from gateway.reconcile.rules import ReconcileError

MAX_LINE = 1024  # bytes; a statement line is under 200
BOM = b"\xef\xbb\xbf"

# The shape of each kind of value, as a regular expression and as words for the error message.
DIGITS = (r"[0-9]{1,12}", "digits (at most 12)")
# Printable ASCII without space, quote or comma (which would make the line regex backtrack).
TOKEN = (r"[!#-+\x2d-~]{1,64}", "1-64 printable ASCII characters, no space, quote or comma")
CURRENCY = (r"[A-Z]{3}", "a currency like CNY")
Shape = tuple[str, str]

Fields = dict[str, str]


class FileFormatError(ReconcileError):
    """The file is not a well-formed statement; nothing was written."""


class CsvReader:
    """Iterate over the rows of ``stream`` as (line number, {column: value}), every value in its
    column's shape; ``sha256`` is the digest of every byte read once iteration ends."""

    def __init__(self, stream: BinaryIO, shapes: Mapping[str, Shape]) -> None:
        self._stream = stream
        self._shapes = shapes
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

    def _header(self, text: str) -> list[str]:
        header = _split(text, 1)
        if sorted(header) != sorted(self._shapes) or len(set(header)) != len(header):
            raise FileFormatError(
                f"columns {','.join(header)[:200]!r}; expected {','.join(self._shapes)}", 1
            )
        return header

    def __iter__(self) -> Iterator[tuple[int, Fields]]:
        lines = self._lines()
        first = next(lines, None)
        if first is None:
            raise FileFormatError("the file is empty; expected a header line", 1)
        header = self._header(first[1])
        line = re.compile(",".join(f"({self._shapes[name][0]})" for name in header))
        for number, text in lines:
            match = line.fullmatch(text)
            if match is not None:
                yield number, dict(zip(header, match.groups(), strict=True))
            else:
                yield number, self._checked(header, text, number)

    def _checked(self, header: list[str], text: str, number: int) -> Fields:
        """The slow path: split (quotes allowed) and check each value, naming the first wrong."""
        fields = _split(text, number)
        if len(fields) != len(header):
            raise FileFormatError(f"{len(fields)} fields, expected {len(header)}", number)
        for name, value in zip(header, fields, strict=True):
            pattern, words = self._shapes[name]
            if re.fullmatch(pattern, value) is None:
                raise FileFormatError(f"{name} {value[:40]!r} is not {words}", number)
        return dict(zip(header, fields, strict=True))


def _split(text: str, number: int) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise FileFormatError(f"not a CSV line ({exc})", number) from None
    return rows[0] if rows else []


def positive(row: Fields, name: str, number: int) -> int:
    value = int(row[name])
    if value <= 0:
        raise FileFormatError(f"{name} must be positive", number)
    return value
