"""What a keypad (STS token) meter remembers across power cuts, in a JSON file replaced
atomically (temp file, fsync, rename)::

    {"format": "tvpay-token-meter/1", "drn": "…", "credited_wh": C, "used_wh": U,
     "tids": [oldest, …, newest]}

The credit left is not stored: it is C - U, so the two can never disagree after a restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emulator.files import write_private

FORMAT = "tvpay-token-meter/1"
TID_MEMORY = 50  # like real meters: the newest 50 token identifiers accepted
_TID_MAX = (1 << 24) - 1


class TokenMeterStateError(Exception):
    """The meter's state file is unreadable, damaged or belongs to another meter."""


@dataclass(frozen=True)
class TokenMeterState:
    credited_wh: int = 0  # all tokens accepted, ever
    used_wh: int = 0  # all energy supplied, ever
    tids: tuple[int, ...] = ()  # the newest accepted TIDs, ascending, at most TID_MEMORY


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def load_state(path: Path, drn: str) -> TokenMeterState:
    """The state in ``path``; a fresh state if the file does not exist yet."""
    fix = "restore it, or delete it to start the meter afresh"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return TokenMeterState()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenMeterStateError(f"cannot read the token meter state {path}: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenMeterStateError(
            f"{path} is not a token meter state file ({exc}); {fix}"
        ) from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise TokenMeterStateError(f"{path} is not a token meter state file ({FORMAT}); {fix}")
    if value.get("drn") != drn:
        raise TokenMeterStateError(f"{path} holds the state of another meter, not {drn}")
    credited, used, tids = value.get("credited_wh"), value.get("used_wh"), value.get("tids")
    if not (_is_count(credited) and _is_count(used) and used <= credited):
        raise TokenMeterStateError(
            f"{path}: credited_wh and used_wh must be integers with 0 <= used_wh <= credited_wh; {fix}"
        )
    if (
        not isinstance(tids, list)
        or len(tids) > TID_MEMORY
        or not all(_is_count(tid) and tid <= _TID_MAX for tid in tids)
        or tids != sorted(set(tids))
    ):
        raise TokenMeterStateError(
            f"{path}: tids must be at most {TID_MEMORY} distinct ascending 24-bit integers; {fix}"
        )
    return TokenMeterState(credited_wh=credited, used_wh=used, tids=tuple(tids))


def save_state(path: Path, drn: str, state: TokenMeterState) -> None:
    """Replace ``path`` with ``state``: afterwards the file holds the old state or the new one."""
    record = {
        "format": FORMAT,
        "drn": drn,
        "credited_wh": state.credited_wh,
        "used_wh": state.used_wh,
        "tids": list(state.tids),
    }
    write_private(path, json.dumps(record).encode())
