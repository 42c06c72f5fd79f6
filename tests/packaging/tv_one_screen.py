"""Runs the TV app of an extracted tvpay-box tree headless until its first screen has been
drawn, prints what is on it as one JSON line, saves a screenshot and quits.

Used by test_installed_box.py with Debian's python3:
    python3 tv_one_screen.py ROOT SCREENSHOT.png [tvpay-tv arguments...]
The module search path is set up exactly as /usr/bin/tvpay-tv sets it; the only addition is
a hook, installed after the app configured Kivy, that takes the snapshot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT, SHOT = Path(sys.argv[1]), Path(sys.argv[2])
LIB = ROOT / "usr/lib/tvpay-box"
sys.path[:0] = [str(LIB), str(LIB / "vendor")]

from tvapp.ui import boot  # noqa: E402

_prepare = boot.prepare_kivy


def _prepare_and_hook(*args: Any, **kwargs: Any) -> str:
    font = _prepare(*args, **kwargs)
    from kivy.clock import Clock
    from kivy.core.window import Window

    from tvapp.ui.app import TvPayApp

    started = TvPayApp.on_start

    def on_start(app: TvPayApp) -> None:
        started(app)

        def snapshot(_dt: float) -> None:
            state = app.screen_state()
            Window.screenshot(name=str(SHOT))
            print(json.dumps({"font": font, **state}, ensure_ascii=False), flush=True)
            app.stop()

        # Two frames later the first screen has been laid out and drawn.
        Clock.schedule_once(lambda _dt: Clock.schedule_once(snapshot, 0), 0)

    TvPayApp.on_start = on_start
    return font


boot.prepare_kivy = _prepare_and_hook

from tvapp.main import main  # noqa: E402

sys.exit(main(sys.argv[3:]))
