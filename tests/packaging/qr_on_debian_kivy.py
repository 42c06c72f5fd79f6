"""Draws the receipt's QR widget with Debian's python3 and Kivy (the box's 2.1) headless, saves a
screenshot and prints the dark pixels' bounding box as one JSON line.

    python3 qr_on_debian_kivy.py REPO_ROOT SCREENSHOT.png
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO, SHOT = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(REPO))
os.environ["KIVY_NO_ARGS"] = "1"
os.environ.setdefault("KIVY_HOME", str(SHOT.parent / "kivy-home"))

from kivy.config import Config  # noqa: E402

Config.set("graphics", "width", "400")
Config.set("graphics", "height", "400")

import kivy  # noqa: E402
from kivy.base import EventLoop, runTouchApp  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from PIL import Image  # noqa: E402

from tvapp.ui.qr import qr_texture  # noqa: E402
from tvapp.ui.widgets import QrView  # noqa: E402

view = QrView(size_hint=(None, None), size=(340, 340), pos=(30, 30))
view.texture = qr_texture("TVPAYR2." + "A" * 300)
runTouchApp(view, embedded=True)
for _ in range(3):
    EventLoop.idle()
written = Path(Window.screenshot(name=str(SHOT)))
# Light pixels are the code's modules and border; the window around it stays black.
box = Image.open(written).convert("L").point(lambda v: 255 if v > 128 else 0).getbbox()
print(json.dumps({"kivy": kivy.__version__, "light_box": box}))
