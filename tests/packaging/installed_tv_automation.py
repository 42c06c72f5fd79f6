"""Runs the installed TV app of a tvpay-box root with the emulator's automation API in front,
so a test outside the root drives it with remote keys, as a person with the remote would.

Run inside the root by test_arm64_box.py with Debian's python3:
    python3 installed_tv_automation.py SETTINGS.json
PYTHONPATH holds the emulator package and the automation API's libraries; the box's own
modules come first on the path, exactly as /usr/bin/tvpay-tv puts them. Prints
"automation API listening on URL" once the API answers; SIGTERM stops the app and the API.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

LIB = Path("/usr/lib/tvpay-box")
sys.path[:0] = [str(LIB), str(LIB / "vendor")]

from emulator.automation.api import create_app  # noqa: E402
from emulator.automation.box import BoxError, TvNotAnswering  # noqa: E402
from emulator.automation.server import AutomationServer  # noqa: E402
from emulator.stack import tv as emulator_tv  # noqa: E402
from emulator.stack.tv import KivyTv, TvSettings, run_tv  # noqa: E402
from emulator.stack.ui import Frame, UiBridge  # noqa: E402

EMULATED_UI_TIMEOUT = 120.0  # seconds: the UI thread runs an order of magnitude slower here


class EmulatedUiBridge(UiBridge):
    """The emulator's bridge with deadlines fit for a CPU emulated by qemu."""

    def call(self, fn: Callable[[], Any], *, what: str = "answer", timeout: float = 0) -> Any:
        return super().call(fn, what=what, timeout=timeout or EMULATED_UI_TIMEOUT)

    def capture(self, *, timeout: float = 0) -> Frame:
        return super().capture(timeout=timeout or EMULATED_UI_TIMEOUT)


emulator_tv.UiBridge = EmulatedUiBridge  # type: ignore[misc]


class NotOnThisBox(BoxError):
    status = 404
    code = "not_on_this_box"


class InstalledTv:
    """The automation API's box: the TV's screen and keys; dongles, network and services
    belong to the emulator stack outside the root and are driven through its own API."""

    def __init__(self, where: dict[str, Any]) -> None:
        self._where = where
        self.tv: KivyTv | None = None

    def _screen(self) -> KivyTv:
        if self.tv is None:
            raise TvNotAnswering("the TV app is still starting; try again in a moment")
        return self.tv

    def press(self, keys: Sequence[str]) -> None:
        self._screen().press(keys)

    def screen(self) -> dict[str, Any]:
        return self._screen().screen()

    def screenshot(self, image_format: str) -> bytes:
        return self._screen().screenshot(image_format)

    def where(self) -> dict[str, Any]:
        return self._where

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def elsewhere(*_args: Any) -> Any:
            raise NotOnThisBox(f"{name} is served by the emulator stack's automation API")

        return elsewhere


def main(settings_file: str) -> int:
    # The app's events (and Kivy's, which run_tv routes through logging) go to stderr: the log.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    raw = json.loads(Path(settings_file).read_text(encoding="utf-8"))
    settings = TvSettings(
        **{
            **raw,
            **{k: Path(raw[k]) for k in ("ca_file", "daemon_socket", "state_dir", "kivy_home")},
        }
    )
    box = InstalledTv({"tv": raw})
    server = AutomationServer(create_app(box), host="127.0.0.1", port=0)
    url = server.start(timeout=300)  # imports and start-up run emulated here

    def started(tv: KivyTv) -> None:
        box.tv = tv
        print(f"automation API listening on {url}", flush=True)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        from kivy.clock import Clock

        Clock.schedule_once(lambda _dt: box.tv.app.stop() if box.tv else None, 0)

    signal.signal(signal.SIGTERM, stop)
    try:
        run_tv(settings, started)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
