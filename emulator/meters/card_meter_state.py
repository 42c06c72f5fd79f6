"""What an IC-card meter remembers across power cuts, kept in a JSON file replaced atomically::

    {"format": "tvpay-card-meter/1", "meter_no": "…", "count": N, "credited_fen": F,
     "total_used_wh": W}

The balance is not stored: it is derived from the money credited and the energy used, so the two
can never disagree after a restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emulator.files import write_private

FORMAT = "tvpay-card-meter/1"
_FIELDS = ("count", "credited_fen", "total_used_wh")


class CardMeterStateError(Exception):
    """The meter's state file is unreadable, damaged or belongs to another meter."""


@dataclass(frozen=True)
class CardMeterState:
    count: int = 0  # the purchase count of the last purchase credited
    credited_fen: int = 0  # all purchases credited, ever
    total_used_wh: int = 0  # all energy measured, ever


def load_state(path: Path, meter_no: str) -> CardMeterState:
    """The state in ``path``; a fresh state if the file does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CardMeterState()
    except (OSError, UnicodeDecodeError) as exc:
        raise CardMeterStateError(f"cannot read the meter state {path}: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CardMeterStateError(f"{path} is not a card meter state file: {exc}") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise CardMeterStateError(f"{path} is not a card meter state file ({FORMAT})")
    if value.get("meter_no") != meter_no:
        raise CardMeterStateError(f"{path} holds the state of another meter, not {meter_no}")
    numbers = [value.get(name) for name in _FIELDS]
    for name, number in zip(_FIELDS, numbers, strict=True):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise CardMeterStateError(f"{path}: {name} must be a non-negative integer")
    return CardMeterState(*numbers)


def save_state(path: Path, meter_no: str, state: CardMeterState) -> None:
    record = {"format": FORMAT, "meter_no": meter_no} | {
        name: getattr(state, name) for name in _FIELDS
    }
    write_private(path, json.dumps(record).encode())
