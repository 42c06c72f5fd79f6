"""Calling into the Kivy TV app from other threads (the automation API's).

Kivy objects belong to the main thread. ``UiBridge.call`` schedules a function on Kivy's clock and
waits for its result with a deadline; ``UiBridge.capture`` grabs the next drawn frame just before
it is flipped to the screen (reading the back buffer after a flip is undefined in OpenGL).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class UiError(Exception):
    """The TV app's UI thread did not answer."""


class UiTimeout(UiError):
    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(
            f"the TV app did not {what} within {timeout:.1f} s: it may be busy or stopped;"
            " check the supervisor's log"
        )


@dataclass(frozen=True)
class Frame:
    """One drawn frame as raw RGB rows, bottom row first (OpenGL's order)."""

    width: int
    height: int
    rgb: bytes

    def crop(self, width: int, height: int) -> Frame:
        """The top-left ``width`` x ``height`` of the frame (the TV, without side panels)."""
        if (width, height) == (self.width, self.height):
            return self
        stride = self.width * 3
        rows = range(self.height - height, self.height)  # bottom-first: the top rows come last
        data = b"".join(self.rgb[r * stride : r * stride + width * 3] for r in rows)
        return Frame(width, height, data)

    def encode(self, image_format: str = "png") -> bytes:
        from PIL import Image

        image = Image.frombytes("RGB", (self.width, self.height), self.rgb)
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        out = io.BytesIO()
        if image_format == "jpeg":
            image.save(out, format="JPEG", quality=80)
        else:
            image.save(out, format="PNG", compress_level=1)
        return out.getvalue()


class _Result:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def settle(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as exc:  # handed to the waiting thread, which re-raises it
            self.error = exc
        finally:
            self.done.set()

    def wait(self, what: str, timeout: float) -> Any:
        if not self.done.wait(timeout):
            raise UiTimeout(what, timeout)
        if self.error is not None:
            raise self.error
        return self.value


class UiBridge:
    """Runs functions on Kivy's main thread on behalf of other threads."""

    def call(self, fn: Callable[[], T], *, what: str = "answer", timeout: float = 5.0) -> T:
        from kivy.clock import Clock

        result = _Result()
        Clock.schedule_once(lambda _dt: result.settle(fn), 0)
        return result.wait(what, timeout)

    def capture(self, *, timeout: float = 5.0) -> Frame:
        """Return the next frame Kivy draws (a redraw is requested so one always comes)."""
        from kivy.clock import Clock
        from kivy.core.window import Window
        from kivy.graphics.opengl import (
            GL_PACK_ALIGNMENT,
            GL_RGB,
            GL_UNSIGNED_BYTE,
            glPixelStorei,
            glReadPixels,
        )

        result = _Result()

        def read() -> Frame:
            width, height = (int(v) for v in Window.size)
            glPixelStorei(GL_PACK_ALIGNMENT, 1)
            return Frame(
                width, height, bytes(glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE))
            )

        def on_flip(*_args: object) -> None:
            # Bound handlers run before the window's own flip: the back buffer holds the frame.
            Window.unbind(on_flip=on_flip)
            result.settle(read)

        def arm(_dt: float) -> None:
            Window.bind(on_flip=on_flip)
            Window.canvas.ask_update()

        Clock.schedule_once(arm, 0)
        return result.wait("draw a frame", timeout)
