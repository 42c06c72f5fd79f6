"""PING and SIGN_PAYMENT round trips per second through pyusb, in-process and over the virtual
cable (a separate ``tvpay-emulator dongle`` process). Prints one JSON object per line."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dongle.usblink import DongleLink
from protocol.messages import Command
from protocol.pin import pin_auth, sign_request_message
from tests.fixtures.dongles import (
    in_process_bus,
    open_link,
    payment_fields,
    pin_token,
    provision,
    running_cable,
)

SECONDS = 2.0


def _rate(step: Callable[[], object]) -> tuple[float, int]:
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < SECONDS:
        step()
        count += 1
    return count / elapsed, count


def _measure(path: str, link: DongleLink) -> dict[str, float]:
    provision(link)
    token = pin_token(link)
    data = {"data": b"x" * 32}
    ping, _ = _rate(lambda: link.call(Command.PING, data))

    def sign() -> object:
        fields = payment_fields()
        auth = pin_auth(token, sign_request_message(fields))
        return link.call(Command.SIGN_PAYMENT, {"fields": fields, "pin_auth": auth})

    signs, _ = _rate(sign)
    for name, value in (("ping", ping), ("sign_payment", signs)):
        print(json.dumps({"bench": "dongle", "path": path, "op": name, "per_s": round(value, 1)}))
    return {"ping": ping, "sign_payment": signs}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _, backend = in_process_bus(Path(tmp), 1)
        with open_link(backend) as link:
            local = _measure("in_process", link)
    with running_cable(1) as cable, open_link(cable.backend()) as link:
        remote = _measure("cable", link)
    for op in local:
        print(
            json.dumps(
                {"bench": "dongle", "op": op, "cable_cost_x": round(local[op] / remote[op], 2)}
            )
        )


if __name__ == "__main__":
    main()
