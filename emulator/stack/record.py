"""What a stack remembers in its state directory between runs (``stack.json``).

Set-up steps that must happen once — making factory dongles, initialising the gateway, demo data,
the staff token, provisioning the demo dongle, the demo household's bank card and mandate — are
recorded here, so a kept state directory starts again without repeating them (and with the same
demo household and PIN).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from protocol.errors import PinPolicyError
from protocol.pin import check_pin

RECORD_NAME = "stack.json"
RECORD_VERSION = 1


class RecordError(Exception):
    """``stack.json`` is damaged or from another version."""


@dataclass(frozen=True)
class DemoHousehold:
    household_no: str
    name: str
    pin: str
    puk: str
    dongle_serial: str


@dataclass(frozen=True)
class StackRecord:
    seed: int
    demo: DemoHousehold | None = None
    households: tuple[str, ...] = ()
    factory_serials: tuple[str, ...] = ()
    manufacturer_ca: str = ""
    gateway_ready: bool = False
    demo_provisioned: bool = False
    demo_card_bound: bool = False
    version: int = RECORD_VERSION


def demo_pin(seed: int) -> str:
    """A PIN that passes the dongle's policy, the same for the same seed."""
    rng = random.Random(f"tvpay-demo-pin-{seed}")
    while True:
        pin = f"{rng.randrange(10**6):06d}"
        try:
            check_pin(pin)
        except PinPolicyError:
            continue
        return pin


def load_record(state_dir: Path) -> StackRecord | None:
    path = state_dir / RECORD_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RecordError(
            f"{path} is unreadable ({exc}): delete the state directory {state_dir} to start afresh"
        ) from exc
    try:
        if data.get("version") != RECORD_VERSION:
            raise RecordError(
                f"{path} was written by another emulator version: use a new --state-dir"
            )
        demo = data.pop("demo", None)
        return StackRecord(
            **{
                **data,
                "demo": DemoHousehold(**demo) if demo else None,
                "households": tuple(data.get("households", ())),
                "factory_serials": tuple(data.get("factory_serials", ())),
            }
        )
    except (TypeError, AttributeError) as exc:
        raise RecordError(
            f"{path} is damaged ({exc}): delete the state directory {state_dir} to start afresh"
        ) from exc


def save_record(state_dir: Path, record: StackRecord) -> None:
    """Write atomically (temp file, fsync, rename): a crash leaves the old record or the new."""
    path = state_dir / RECORD_NAME
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(record), f, ensure_ascii=False, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
