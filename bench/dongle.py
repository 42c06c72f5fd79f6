"""PING and SIGN_PAYMENT round trips per second through pyusb, in-process and over the virtual
cable (a separate ``tvpay-emulator dongle`` process). Prints one JSON object per line.

The machine may be shared, so the two paths are measured in alternating short windows and each
figure is reported as the best and the median window; the cable's cost factor is the median of
the per-window ratios (each in-process window against the cable window right after it).
SIGN_PAYMENT commits the counter durably before answering, so it is measured with the dongles'
state on the normal disk and on tmpfs (/dev/shm), where a flush costs nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

WINDOW = 0.5  # seconds per measuring window
ROUNDS = 6  # windows per path and operation
STORAGE = {"disk": "/var/tmp", "tmpfs": "/dev/shm"}


def emit(**record: object) -> None:
    print(json.dumps({"bench": "dongle", **record}), flush=True)


def filesystem(path: str) -> str:
    """The type of the filesystem holding ``path`` (longest mount point that prefixes it)."""
    best, kind = "", "unknown"
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def _window(step: Callable[[], object]) -> float:
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < WINDOW:
        step()
        count += 1
    return count / elapsed


def _ping(link: DongleLink) -> Callable[[], object]:
    data = {"data": b"x" * 32}
    return lambda: link.call(Command.PING, data)


def _sign(link: DongleLink) -> Callable[[], object]:
    provision(link)
    token = pin_token(link)

    def step() -> object:
        fields = payment_fields()
        auth = pin_auth(token, sign_request_message(fields))
        return link.call(Command.SIGN_PAYMENT, {"fields": fields, "pin_auth": auth})

    return step


def compare(
    op: str, local: Callable[[], object], remote: Callable[[], object], **labels: str
) -> None:
    for step in (local, remote):  # warm-up: connections, caches
        for _ in range(50):
            step()
    pairs = [(_window(local), _window(remote)) for _ in range(ROUNDS)]
    for path, rates in (("in_process", [a for a, _ in pairs]), ("cable", [b for _, b in pairs])):
        emit(
            op=op,
            path=path,
            **labels,
            best_per_s=round(max(rates), 1),
            median_per_s=round(statistics.median(rates), 1),
            spread_per_s=[round(min(rates), 1), round(max(rates), 1)],
        )
    emit(
        op=op,
        **labels,
        cable_cost_x_median=round(statistics.median(a / b for a, b in pairs), 2),
        cable_cost_x_best=round(max(a for a, _ in pairs) / max(b for _, b in pairs), 2),
    )


@contextmanager
def dongle_pair(root: str) -> Iterator[tuple[DongleLink, DongleLink]]:
    """An in-process dongle and a dongle behind the cable, both with their state under ``root``."""
    with tempfile.TemporaryDirectory(prefix="bench-dongle-", dir=root) as tmp:
        _, backend = in_process_bus(Path(tmp) / "local", 1)
        with (
            running_cable(1, state_dir=Path(tmp) / "cable") as cable,
            open_link(backend) as local,
            open_link(cable.backend()) as remote,
        ):
            yield local, remote


def main() -> None:
    emit(op="machine", cpus=os.cpu_count(), load_1m=round(os.getloadavg()[0], 2))
    for storage, root in STORAGE.items():
        if not os.path.isdir(root):
            emit(op="sign_payment", storage=storage, skipped=f"{root} does not exist")
            continue
        with dongle_pair(root) as (local, remote):
            if storage == "disk":  # PING never touches the store
                compare("ping", _ping(local), _ping(remote))
            labels = {"storage": storage, "state_fs": filesystem(root)}
            compare("sign_payment", _sign(local), _sign(remote), **labels)


if __name__ == "__main__":
    main()
