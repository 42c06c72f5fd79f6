"""The TV app inside the supervisor's main thread, driven from the automation API's threads.

Kivy wants the main thread, so the supervisor runs the real ``tvapp`` App there and the
automation API (a background thread) reaches it through ``UiBridge``: each key is handled on the
UI thread before the call returns, so the screen read next already reflects it. With a display,
the window is 1280x720 for the TV plus a strip on the right with an on-screen remote; headless,
SDL's offscreen driver draws the same frames for screenshots and the web remote.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.automation.box import TvNotAnswering, UnknownKey
from emulator.stack.ui import UiBridge, UiError

TV_SIZE = (1280, 720)
REMOTE_WIDTH = 240


@dataclass(frozen=True)
class TvSettings:
    gateway_url: str
    ca_file: Path
    daemon_socket: Path
    state_dir: Path
    kivy_home: Path
    language: str
    holder_name: str
    headless: bool


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class KivyTv:
    """The running TV app as the automation API sees it (``supervisor.TvScreen``)."""

    def __init__(self, app: Any, bridge: UiBridge) -> None:
        self._app = app
        self._bridge = bridge

    @property
    def app(self) -> Any:
        return self._app

    def press(self, keys: Sequence[str]) -> None:
        from tvapp.input.actions import ACTIONS

        unknown = [k for k in keys if k not in ACTIONS]
        if unknown:
            raise UnknownKey(
                f"unknown key(s) {', '.join(map(repr, unknown))}: use one of"
                f" {', '.join(sorted(ACTIONS))}"
            )
        for key in keys:
            self._ui(lambda key=key: self._app.press(key), f"handle the key {key!r}")

    def screen(self) -> dict[str, Any]:
        return self._ui(self._app.screen_state, "report its screen")

    def screenshot(self, image_format: str) -> bytes:
        try:
            frame = self._bridge.capture()
        except UiError as exc:
            raise TvNotAnswering(str(exc)) from exc
        return frame.crop(*TV_SIZE).encode(image_format)

    def _ui(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return self._bridge.call(fn, what=what)
        except UiError as exc:
            raise TvNotAnswering(str(exc)) from exc


def _tv_config(settings: TvSettings) -> Any:
    from tvapp.config import load_config

    overrides = {
        "gateway_url": settings.gateway_url,
        "ca_file": str(settings.ca_file),
        "daemon_socket": str(settings.daemon_socket),
        "state_dir": str(settings.state_dir),
        "language": settings.language,
        "window": f"{TV_SIZE[0]}x{TV_SIZE[1]}",
        "fullscreen": False,
        "evdev": False,
        "holder_name": settings.holder_name,
    }
    # No system config file: a box's /etc/tvpay/tvapp.toml must not steer the emulator.
    return load_config(settings.state_dir / "tvapp.toml", os.environ, overrides)


def run_tv(settings: TvSettings, on_started: Callable[[KivyTv], None]) -> None:
    """Run the TV app on this (main) thread until it stops; ``on_started`` gets its handle."""
    os.environ["KIVY_HOME"] = str(settings.kivy_home)
    # Kivy logs through Python logging (the supervisor's key=value lines), without taking over
    # the root logger or sys.stderr.
    os.environ["KIVY_LOG_MODE"] = "PYTHON"
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # SDL must leave SIGINT/SIGTERM to the supervisor, which stops everything in order.
    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    if settings.headless:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    (settings.state_dir / "tvapp.toml").touch()
    config = _tv_config(settings)
    from tvapp.ui.boot import prepare_kivy

    width = TV_SIZE[0] + (0 if settings.headless else REMOTE_WIDTH)
    prepare_kivy(width, TV_SIZE[1], fullscreen=False, font_cache=settings.state_dir / "fonts")
    from tvapp.services.container import Services
    from tvapp.ui.app import TvPayApp
    from tvapp.ui.translate import tr

    tr.switch(settings.language)
    services = Services.build(config)
    app = TvPayApp(config, services)
    tv = KivyTv(app, UiBridge())

    def started(_app: Any) -> None:
        if not settings.headless:
            from emulator.stack.remote_panel import attach_remote_panel

            attach_remote_panel(app, TV_SIZE, REMOTE_WIDTH)
        on_started(tv)

    app.bind(on_start=started)
    try:
        app.run()
    finally:
        services.close()
