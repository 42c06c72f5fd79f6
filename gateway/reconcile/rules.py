"""The matching rules: our records of one day against the lines of the other side's file.

Pure: no database, no file. The caller hands in our records (a mapping by key), feeds the file's
lines one at a time, and gives a ``lookup`` for keys that are not among the day's records (a
payment written off on another day, or of another biller). Only what a person must read is kept
in memory beyond the day's records: the seen keys (as 64-bit digests, so a million lines fit) and
at most ``limit`` findings per kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gateway.errors import GatewayError

# Kinds of finding (docs/money.md "Reconciliation and settlement" says how to repair each).
MATCHED = "matched"
CREDITED = "credited"  # ours was still succeeded; the file shows the write-off: resolved here
MISSING_THERE = "missing_there"  # ours, not theirs: re-sent through the outbox when it can be
MISSING_HERE = "missing_here"  # theirs, not ours: for staff, never created automatically
MISMATCH = "mismatch"  # both have it, but amount, currency, reference or state differ
DUPLICATE = "duplicate"  # the file lists one key more than once
KINDS = (MATCHED, CREDITED, MISSING_THERE, MISSING_HERE, MISMATCH, DUPLICATE)

State = Literal["pending", "done", "refunded", "untaken"]
BATCH = 500  # unknown keys looked up per call


class ReconcileError(GatewayError):
    """The file cannot be reconciled as asked; nothing was written."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class ScopeMismatch(ReconcileError):
    """A line belongs to another biller or day than the command names."""


@dataclass(frozen=True, slots=True)
class Ours:
    """Our record of one movement. ``pending``: taken but not yet confirmed by the other side
    (a succeeded payment); ``done``: confirmed (credited, or posted at the bank);
    ``refunded``: given back, and ``untaken``: no money moved (failed, still processing), so the
    other side must not hold it."""

    key: str
    amount_fen: int
    currency: str
    state: State
    ref: str | None = None  # the other side's reference we hold (utility_ref), if any
    scope: str = ""  # biller (utility) or "" (bank): a lookup result outside it is refused


@dataclass(frozen=True, slots=True)
class Theirs:
    line: int
    key: str
    amount_fen: int
    currency: str
    ref: str


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    key: str
    line: int | None  # in the file; None for ours-only findings
    detail: str


@dataclass
class Outcome:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    findings: list[Finding] = field(default_factory=list)
    to_credit: list[tuple[str, str]] = field(default_factory=list)  # (key, their ref)
    to_resend: list[str] = field(default_factory=list)
    lines: int = 0


Lookup = Callable[[list[str]], Mapping[str, Ours]]


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class Matcher:
    """Feed every line, then ``finish``. ``resend`` decides which ours-only records are re-sent
    automatically (the rest are reported for staff)."""

    def __init__(
        self,
        ours: Mapping[str, Ours],
        lookup: Lookup,
        scope: str = "",
        limit: int = 1000,
        resend: Callable[[Ours], bool] = lambda o: o.state != "refunded",
    ) -> None:
        self._ours = ours
        self._lookup = lookup
        self._scope = scope
        self._limit = limit
        self._resend = resend
        self._seen: set[int] = set()
        self._unknown: list[Theirs] = []
        self.outcome = Outcome()

    def _report(self, kind: str, key: str, line: int | None, detail: str = "") -> None:
        self.outcome.counts[kind] += 1
        if kind != MATCHED and self.outcome.counts[kind] <= self._limit:
            self.outcome.findings.append(Finding(kind, key, line, detail))

    def feed(self, line: Theirs) -> None:
        self.outcome.lines += 1
        digest = _digest(line.key)
        if digest in self._seen:
            self._report(DUPLICATE, line.key, line.line, "listed again")
            return
        self._seen.add(digest)
        mine = self._ours.get(line.key)
        if mine is not None:
            self._compare(mine, line)
            return
        self._unknown.append(line)
        if len(self._unknown) >= BATCH:
            self._resolve_unknown()

    def _resolve_unknown(self) -> None:
        batch, self._unknown = self._unknown, []
        found = self._lookup([t.key for t in batch])
        for theirs in batch:
            mine = found.get(theirs.key)
            if mine is None:
                self._report(MISSING_HERE, theirs.key, theirs.line, "we hold no such record")
            elif mine.scope != self._scope:
                raise ScopeMismatch(
                    f"{theirs.key} belongs to {mine.scope or 'no biller'}, not {self._scope}: "
                    "is this the right file for the command?",
                    theirs.line,
                )
            else:
                self._compare(mine, theirs)

    def _compare(self, mine: Ours, theirs: Theirs) -> None:
        if (mine.amount_fen, mine.currency) != (theirs.amount_fen, theirs.currency):
            self._report(
                MISMATCH,
                theirs.key,
                theirs.line,
                f"ours {mine.amount_fen} {mine.currency}, "
                f"theirs {theirs.amount_fen} {theirs.currency}",
            )
        elif mine.state in ("refunded", "untaken"):
            self._report(MISMATCH, theirs.key, theirs.line, f"{mine.state} here, but listed there")
        elif mine.ref is not None and mine.ref != theirs.ref:
            self._report(
                MISMATCH, theirs.key, theirs.line, f"our ref {mine.ref}, theirs {theirs.ref}"
            )
        elif mine.state == "pending":
            self._report(CREDITED, theirs.key, theirs.line, f"confirmed as {theirs.ref}")
            self.outcome.to_credit.append((theirs.key, theirs.ref))
        else:
            self._report(MATCHED, theirs.key, theirs.line)

    def finish(self) -> Outcome:
        if self._unknown:
            self._resolve_unknown()
        for key in sorted(self._ours):
            mine = self._ours[key]
            if mine.state in ("refunded", "untaken") or _digest(key) in self._seen:
                continue
            if self._resend(mine):
                self.outcome.to_resend.append(key)
                self._report(MISSING_THERE, key, None, "re-sent")
            else:
                self._report(MISSING_THERE, key, None, "for staff")
        return self.outcome


def match(
    ours: Mapping[str, Ours], theirs: Iterable[Theirs], lookup: Lookup, scope: str = ""
) -> Outcome:
    """All of it at once (tests, small files)."""
    matcher = Matcher(ours, lookup, scope)
    for line in theirs:
        matcher.feed(line)
    return matcher.finish()
