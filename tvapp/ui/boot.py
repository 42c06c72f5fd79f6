"""Kivy must be configured before its first import: environment, window, fonts, input."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tvapp import fonts
from tvapp.ui.theme import DESIGN_HEIGHT


def prepare_kivy(width: int, height: int, *, fullscreen: bool, font_cache: Path) -> str:
    """Configure Kivy for the TV and register the CJK font; returns the font file used."""
    os.environ["KIVY_NO_ARGS"] = "1"
    # A private KIVY_HOME: a developer's ~/.kivy/config.ini must not change the box's UI.
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="tvpay-kivy-"))
    # One design at 1280x720: dp() scales it to the real screen (1.5 at 1080p).
    os.environ["KIVY_METRICS_DENSITY"] = f"{height / DESIGN_HEIGHT:.4f}"
    os.environ.setdefault("KIVY_METRICS_FONTSCALE", "1")
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "log_level", "warning")
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "resizable", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # No touch or mtdev providers: a TV box has none, and probing them costs start-up time.
    for name in list(Config.options("input")):
        if name != "mouse":
            Config.remove_option("input", name)
    face = fonts.find_cjk_face(os.environ.get("TVPAY_LANGUAGE", "zh_CN"))
    path = fonts.usable_font_file(face, font_cache)
    from kivy.core.text import DEFAULT_FONT, LabelBase

    LabelBase.register(DEFAULT_FONT, path, path, path, path)
    return path


def headless() -> bool:
    """No display server: SDL falls back to its offscreen driver (tests, benchmarks, CI)."""
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def finish_each_offscreen_frame() -> None:
    """Wait for the GPU at the end of each frame when there is no display.

    With SDL's offscreen driver nothing is ever presented, so Mesa's software renderer never
    reaches a point where it frees the buffers of finished frames: memory grew by megabytes per
    redrawn frame (measured by bench/tvapp.py). glFinish after each flip is that point; it also
    makes "frame drawn" mean drawn. A real display synchronises on buffer swaps by itself.
    """
    if not headless():
        return
    from kivy.core.window import Window
    from kivy.graphics.opengl import glFinish

    Window.bind(on_flip=lambda *_args: glFinish())
