"""Asking for PINs, PUKs and confirmations without echo and without the command line.

At a terminal, secrets are read with getpass (new ones twice). When stdin is not a terminal
(scripts, tests), each secret is one line of stdin, read once: nothing lands in argv or history.
"""

from __future__ import annotations

import getpass
import sys

from dongle.staff.errors import UsageError


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def secret(prompt: str) -> str:
    """One secret: typed at the terminal without echo, or the next line of stdin."""
    if _interactive():
        try:
            return getpass.getpass(f"{prompt}: ", stream=sys.stderr).strip()
        except EOFError:
            raise UsageError(f"no {prompt} was typed: run the command again") from None
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise UsageError(f"no {prompt} given: type it at the prompt, or send it as a line on stdin")
    return line.strip()


def new_secret(prompt: str) -> str:
    """A new secret, typed twice at a terminal so a typo does not lock the household out."""
    first = secret(prompt)
    if _interactive() and secret(f"{prompt} again") != first:
        raise UsageError(f"the two {prompt}s differ: nothing was changed; run the command again")
    return first


def confirm(question: str, expected: str) -> bool:
    """True when the user types ``expected`` (e.g. the dongle's serial) to the question."""
    if not _interactive():
        return False
    sys.stderr.write(f"{question} ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip() == expected
