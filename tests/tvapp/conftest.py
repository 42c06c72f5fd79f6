"""Fixtures of the TV app's tests: the real system (gateway, daemon, virtual dongle) and the
app itself, started once per test session (Kivy allows one window per process)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tvapp.netcut import NetworkCut
from tests.tvapp.world import World, running_world


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    # Unix socket paths are limited to 108 bytes: keep the world in a short directory.
    with tempfile.TemporaryDirectory(prefix="tvw-") as tmp, running_world(Path(tmp)) as w:
        yield w


@pytest.fixture(scope="session")
def network(world: World) -> Iterator[NetworkCut]:
    host, port = world.gateway_url.removeprefix("http://").split(":")
    relay = NetworkCut((host, int(port)))
    yield relay
    relay.close()


@pytest.fixture(scope="session")
def tv(
    world: World, network: NetworkCut, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The app, headless, talking to the gateway through the network relay."""
    state = tmp_path_factory.mktemp("tvapp-state")
    os.environ["KIVY_HOME"] = str(state / "kivy")
    from tvapp.config import TvConfig
    from tvapp.ui.boot import prepare_kivy

    prepare_kivy(1280, 720, fullscreen=False, font_cache=state / "fonts")
    from tests.tvapp.driver import AppDriver
    from tvapp.services.container import Services

    config = TvConfig(
        gateway_url=network.url,
        daemon_socket=str(world.daemon_socket),
        state_dir=str(state),
        holder_name=world.household["name"],
        resubmit_seconds=0.5,
        evdev=False,
    )
    services = Services.build(config)
    driver = AppDriver.start(config, services)
    yield driver
    driver.stop()
    services.close()
