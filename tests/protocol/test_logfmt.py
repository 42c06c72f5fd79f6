"""protocol.logfmt: the one key=value log line format every TVPay program writes to stderr."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from protocol import logfmt

LINE = re.compile(r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ level=(\w+) logger=(\S+) (.*)")


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logfmt.configure()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(text: str) -> list[tuple[str, str, str]]:
    return [m.groups() for m in map(LINE.fullmatch, text.splitlines()) if m]


def test_event_log_writes_one_key_value_line(configured, capsys) -> None:
    logfmt.EventLog("tvpay.test")("client_gone", conn=3, reason="refused")
    assert lines(capsys.readouterr().err) == [
        ("info", "tvpay.test", "event=client_gone conn=3 reason=refused")
    ]


def test_values_with_spaces_quotes_or_equals_stay_one_token() -> None:
    text = logfmt.event_text("x", {"a": 'say "hi"', "b": "k=v", "c": "", "d": "two\nlines"})
    assert text == r'event=x a="say \"hi\"" b="k=v" c="" d="two\nlines"'


def test_fields_set_to_none_are_left_out() -> None:
    assert logfmt.event_text("x", {"a": None, "b": 0}) == "event=x b=0"


def test_plain_loggers_share_the_format(configured, capsys) -> None:
    logging.getLogger("tvpay.gateway").warning("event=db_unavailable error=%s", "Timeout")
    assert lines(capsys.readouterr().err) == [
        ("warning", "tvpay.gateway", "event=db_unavailable error=Timeout")
    ]


def test_warning_level_drops_info_events(configured, capsys) -> None:
    logfmt.configure(logging.WARNING)
    log = logfmt.EventLog("tvpay.test")
    log("step")
    log("failed", level="error")
    assert [level for level, _, _ in lines(capsys.readouterr().err)] == ["error"]


def test_configuring_twice_still_writes_each_event_once(configured, capsys) -> None:
    logfmt.configure()
    logfmt.EventLog("tvpay.test")("once")
    assert len(lines(capsys.readouterr().err)) == 1


def test_lines_follow_a_replaced_stderr(configured, monkeypatch) -> None:
    # A live progress display swaps sys.stderr while it runs; events must go where it points.
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    logfmt.EventLog("tvpay.test")("during_progress")
    assert lines(swapped.getvalue())[0][2] == "event=during_progress"


class _LoggingStream:
    """Like Kivy 2.1's sys.stderr replacement: what is written to it becomes a log record."""

    __module__ = "kivy.logger"

    def write(self, text: str) -> int:
        logging.getLogger("kivy").warning("stderr: %s", text.rstrip("\n"))
        return len(text)

    def flush(self) -> None:
        pass


def test_a_stderr_that_logs_what_it_gets_is_bypassed(configured, monkeypatch) -> None:
    real = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", real)
    monkeypatch.setattr(sys, "stderr", _LoggingStream())
    logfmt.EventLog("tvpay.test")("started")
    assert lines(real.getvalue()) == [("info", "tvpay.test", "event=started")]
