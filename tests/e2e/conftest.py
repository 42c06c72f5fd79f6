"""One shared emulated box for the e2e modules whose tests leave it as they found it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import RunningStack, start_stack


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir = tmp_path_factory.mktemp("e2e") / "state"
    with start_stack(state_dir, args=("--seed", "11", "--households", "2")) as stack:
        yield stack


@pytest.fixture
def stack(shared_stack: RunningStack) -> Iterator[RunningStack]:
    """The shared stack, restored to normal after each test (network up, daemon running)."""
    yield shared_stack
    client = shared_stack.client
    client.network("up")
    client.start_daemon()
    client.clear_faults()
    client.plug()
