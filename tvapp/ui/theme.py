"""Colours and sizes of the 10-foot UI, in 1280x720 design pixels (dp scales them to 1080p).

Kodi's numbers: body text 30 px at 1080p (20 px at 720p), nothing smaller than 23 px at 1080p;
a 5% safe area all round because TVs overscan.
"""

from __future__ import annotations

DESIGN_HEIGHT = 720
SAFE_AREA = 0.05

BACKGROUND = (0.063, 0.078, 0.094, 1)  # #101418
SURFACE = (0.118, 0.145, 0.176, 1)  # #1E252D
SURFACE_FOCUSED = (0.176, 0.231, 0.290, 1)  # #2D3B4A
TEXT = (0.93, 0.94, 0.95, 1)
TEXT_DIM = (0.66, 0.70, 0.74, 1)
ACCENT = (0.26, 0.65, 0.96, 1)  # #42A5F5
FOCUS_RING = (1.0, 0.76, 0.03, 1)  # #FFC107: amber reads on every surface we use
WARNING = (1.0, 0.60, 0.0, 1)
DANGER = (0.94, 0.33, 0.31, 1)
SUCCESS = (0.40, 0.73, 0.42, 1)
KEY_COLOURS = {
    "red": (0.90, 0.22, 0.21, 1),
    "green": (0.26, 0.63, 0.28, 1),
    "yellow": (0.99, 0.85, 0.21, 1),
    "blue": (0.12, 0.53, 0.90, 1),
}

FONT_SMALL = 20  # the floor for any text at 720p
FONT_BODY = 24
FONT_TITLE = 34
FONT_LARGE = 44
FONT_HUGE = 60
FOCUS_RING_WIDTH = 3
RADIUS = 10
# The colour of each payment status tone (tvapp/ui/statuses.py): it repeats the word, never
# replaces it.
TONES = {
    "success": SUCCESS,
    "progress": WARNING,
    "returned": ACCENT,
    "failed": DANGER,
    "dim": TEXT_DIM,
}
