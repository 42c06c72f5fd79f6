"""Drives the real TV app headless in the test process: key events in, frames out.

Kivy has one window per process, so the app is started once (``AppDriver.start``) and the
tests share it; the driver steps Kivy's event loop by hand, as Kivy's own graphic tests do.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
KEYCODES = {"up": 273, "down": 274, "right": 275, "left": 276, "ok": 13, "back": 27}


class AppDriver:
    def __init__(self, app: Any) -> None:
        self.app = app

    @classmethod
    def start(cls, config: Any, services: Any) -> AppDriver:
        from kivy.base import runTouchApp

        from tvapp.ui.app import TvPayApp

        app = TvPayApp(config, services)
        app._run_prepare()
        runTouchApp(embedded=True)
        driver = cls(app)
        driver.frames(2)
        return driver

    def stop(self) -> None:
        from kivy.base import stopTouchApp

        self.app.stop()
        stopTouchApp()

    def frames(self, count: int = 1) -> None:
        from kivy.base import EventLoop

        for _ in range(count):
            EventLoop.idle()

    def state(self) -> dict[str, Any]:
        return self.app.screen_state()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            self.frames()
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen state: {state}")

    def wait_screen(self, screen: str, timeout: float = 20.0) -> dict[str, Any]:
        self.wait_for(
            lambda s: s["screen"] == screen and not self.app.controller.worker.busy,
            f"screen {screen}",
            timeout,
        )
        self.frames(3)  # let Clock triggers rebuild lists and the focus settle
        return self.state()

    def press(self, *actions: str) -> dict[str, Any]:
        for action in actions:
            self.app.press(action)
            self.frames()
        return self.state()

    def key(self, keycode: int) -> dict[str, Any]:
        """A key through the window, as SDL delivers it."""
        from kivy.core.window import Window

        Window.dispatch("on_key_down", keycode, 0, None, [])
        self.frames()
        return self.state()

    def type_digits(self, digits: str) -> None:
        for digit in digits:
            self.key(48 + int(digit))

    def paths(self) -> dict[str, list[str]]:
        """Every focus id the arrows reach from the current focus, with the arrows to get there.

        Moving the focus scrolls lists, and where an arrow leads depends on the scroll: each
        item is explored from the scroll positions it was reached with, and the screen is left
        as it was found, so a route is what the same presses do from here.
        """
        screen = self.app.sm.current_screen
        start = screen.focused_id
        before = self._scrolls()
        found: dict[str, list[str]] = {start: []}
        scrolled: dict[str, list[tuple[Any, float, float]]] = {start: before}
        frontier = [start]
        while frontier:
            origin = frontier.pop(0)
            for action in ("up", "down", "left", "right"):
                self._restore(scrolled[origin])
                screen.set_focus(origin)
                self.app.press(action)
                if screen.focused_id not in found:
                    found[screen.focused_id] = found[origin] + [action]
                    scrolled[screen.focused_id] = self._scrolls()
                    frontier.append(screen.focused_id)
        self._restore(before)
        screen.set_focus(start)
        self.frames()
        return found

    def _scrolls(self) -> list[tuple[Any, float, float]]:
        from kivy.uix.scrollview import ScrollView

        screen = self.app.sm.current_screen
        return [(w, w.scroll_x, w.scroll_y) for w in screen.walk() if isinstance(w, ScrollView)]

    def _restore(self, scrolls: list[tuple[Any, float, float]]) -> None:
        for view, x, y in scrolls:
            view.scroll_x, view.scroll_y = x, y
            view.update_from_scroll()

    def focus_on(self, focus_id: str) -> dict[str, Any]:
        """Move the focus to ``focus_id`` with arrow presses only."""
        route = self.paths().get(focus_id)
        if route is None:
            raise AssertionError(f"the arrows cannot reach {focus_id}: {self.state()}")
        return self.press(*route)

    def screenshot(self, name: str) -> Path:
        from kivy.core.window import Window

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.frames(2)
        written = Window.screenshot(str(SCREENSHOTS / f"{name}.png"))
        target = SCREENSHOTS / f"{name}.png"
        shutil.move(written, target)  # Kivy numbers its screenshots; keep stable names
        return target
