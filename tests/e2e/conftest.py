"""One shared emulated box for the e2e modules whose tests leave it as they found it, and a
headless Chromium for the tests of the web remote's page."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

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


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (make setup)"
    profile = tempfile.mkdtemp(prefix="tvpay-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
