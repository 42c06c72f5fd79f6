"""The automation API's contract on the running box: screenshots, where, and refusals."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from emulator.automation.client import AutomationClient, AutomationClientError
from tests.e2e.stack import RunningStack


def test_screenshot_is_the_1280x720_tv_picture(stack: RunningStack) -> None:
    for image_format in ("png", "jpeg"):
        image = Image.open(io.BytesIO(stack.client.screenshot(image_format)))
        assert (image.format, image.size) == (image_format.upper(), (1280, 720))


def test_where_names_every_running_part(stack: RunningStack) -> None:
    where = stack.client.where()
    for part in ("gateway", "cable", "daemon"):
        assert where[part]["running"] and where[part]["pid"]
    assert where["tv_gateway_url"].startswith("https://127.0.0.1:")
    assert where["demo"]["pin"].isdigit() and len(where["demo"]["pin"]) == 6


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda c: c.press("ok", "launch"), 422, "unknown_key"),
        (lambda c: c.unplug("TVP-NOPE"), 404, "dongle_not_found"),
        (lambda c: c.fault("melt"), 422, "invalid_fault"),
        (lambda c: c.network("sideways"), 422, "invalid_request"),
        (lambda c: c.wait(screen="nowhere", timeout=0.2), 408, "wait_timeout"),
    ],
)
def test_refusals_say_what_is_wrong(
    stack: RunningStack, call: Callable[[AutomationClient], object], status: int, code: str
) -> None:
    with pytest.raises(AutomationClientError) as refused:
        call(stack.client)
    assert (refused.value.status, refused.value.code) == (status, code)
