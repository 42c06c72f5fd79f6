"""Property tests of the matching rules (gateway/reconcile/rules.py), which know nothing of
files or the database: whatever ours and theirs hold, every record ends up in exactly one kind,
the order of the file does not matter, and only what the rules allow is resolved."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.reconcile.rules import (
    BATCH,
    KINDS,
    Ours,
    ScopeMismatch,
    Theirs,
    match,
)

KEYS = [f"pay_{i:032x}" for i in range(12)]
states = st.sampled_from(["pending", "done", "refunded", "untaken"])
ours_records = st.dictionaries(
    st.sampled_from(KEYS),
    st.tuples(st.integers(1, 3), st.sampled_from(["CNY", "USD"]), states),
    max_size=12,
)
their_lines = st.lists(
    st.tuples(st.sampled_from(KEYS), st.integers(1, 3), st.sampled_from(["CNY", "USD"])),
    max_size=30,
)


def _ours(raw: dict[str, tuple[int, str, str]]) -> dict[str, Ours]:
    return {k: Ours(k, a, c, s, None, "B") for k, (a, c, s) in raw.items()}  # type: ignore[arg-type]


def _theirs(raw: list[tuple[str, int, str]]) -> list[Theirs]:
    return [Theirs(n + 2, k, a, c, f"ref-{k}") for n, (k, a, c) in enumerate(raw)]


def _none(keys: list[str]) -> dict[str, Ours]:
    return {}


@settings(max_examples=300, deadline=None)
@given(ours_records, their_lines)
def test_every_record_is_counted_once(raw_ours, raw_theirs) -> None:
    ours, theirs = _ours(raw_ours), _theirs(raw_theirs)
    outcome = match(ours, theirs, _none, "B")
    counts = outcome.counts
    distinct = {t.key for t in theirs}
    assert counts["duplicate"] == len(theirs) - len(distinct)
    assert counts["missing_here"] == len(distinct - set(ours))
    settled = {k for k, o in ours.items() if o.state not in ("refunded", "untaken")}
    assert counts["missing_there"] == len(settled - distinct)
    assert sum(counts[k] for k in KINDS) == len(theirs) + len(settled - distinct)
    # Only a pending record the file confirms, with the same amount and currency, is credited.
    for key, ref in outcome.to_credit:
        first = next(t for t in theirs if t.key == key)
        assert ours[key].state == "pending" and ref == first.ref
        assert (first.amount_fen, first.currency) == (ours[key].amount_fen, ours[key].currency)
    assert sorted(outcome.to_resend) == sorted(settled - distinct)


@settings(max_examples=200, deadline=None)
@given(ours_records, their_lines, st.randoms(use_true_random=False))
def test_the_order_of_the_file_changes_nothing_but_which_line_is_the_duplicate(
    raw_ours, raw_theirs, rng
) -> None:
    distinct = list(dict.fromkeys(k for k, _, _ in raw_theirs))
    first_of = {k: next(r for r in raw_theirs if r[0] == k) for k in distinct}
    lines = [first_of[k] for k in distinct]
    shuffled = lines[:]
    rng.shuffle(shuffled)
    ours = _ours(raw_ours)
    one = match(ours, _theirs(lines), _none, "B")
    two = match(ours, _theirs(shuffled), _none, "B")
    assert one.counts == two.counts
    assert sorted(one.to_credit) == sorted(two.to_credit)
    assert Counter(f.kind for f in one.findings) == Counter(f.kind for f in two.findings)


def test_a_key_of_another_biller_is_refused_with_its_line() -> None:
    other = {KEYS[0]: Ours(KEYS[0], 1, "CNY", "done", None, "OTHER")}
    theirs = [
        Theirs(n + 2, KEYS[0] if n == BATCH + 3 else f"x{n}", 1, "CNY", "r")
        for n in range(BATCH + 9)
    ]
    try:
        match({}, theirs, lambda keys: {k: other[k] for k in keys if k in other}, "B")
    except ScopeMismatch as exc:
        assert exc.line == BATCH + 5 and "OTHER" in str(exc)
    else:
        raise AssertionError("a line of another biller was accepted")
