from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dongle.usblink import DongleLink
from emulator.usb.bus import VirtualBus
from tests.fixtures.dongles import Provisioned, in_process_bus, open_link, provision


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus_and_backend(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    return in_process_bus(tmp_path, 1, seed=7, clock=clock)


@pytest.fixture
def bus(bus_and_backend) -> VirtualBus:  # type: ignore[no-untyped-def]
    return bus_and_backend[0]


@pytest.fixture
def link(bus_and_backend) -> Iterator[DongleLink]:  # type: ignore[no-untyped-def]
    with open_link(bus_and_backend[1]) as opened:
        yield opened


@pytest.fixture
def provisioned(link: DongleLink) -> Provisioned:
    return provision(link)
