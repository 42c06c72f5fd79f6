"""One provisioning bench (cable, daemon, gateway) shared by the staff tool's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.staff.harness import Bench, staff_bench


@pytest.fixture(scope="session")
def bench() -> Iterator[Bench]:
    with staff_bench(count=44) as running:
        yield running
