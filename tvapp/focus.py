"""Spatial focus navigation for a remote with arrow keys.

Pure Python over rectangles, so the geometry is testable without Kivy. An arrow moves the focus
to the nearest focusable item in that direction, the way Android TV's FocusFinder does: items
that overlap the focused one across the direction of travel (its "beam") win over items that are
only diagonally ahead, then the closest by a distance that weighs the travel axis heavily, then
the top-most / left-most, then the id, so the result never depends on dict order.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Direction(enum.Enum):
    UP = "up"
    DOWN = "down"
    LEFT = "left"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class Rect:
    """A rectangle in window coordinates with y growing upwards (Kivy's convention)."""

    x: float
    y: float
    width: float
    height: float

    @property
    def left(self) -> float:
        return self.x

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y

    @property
    def top(self) -> float:
        return self.y + self.height

    @property
    def center_x(self) -> float:
        return self.x + self.width / 2

    @property
    def center_y(self) -> float:
        return self.y + self.height / 2


# Android's weighting: being off-axis costs far less than being far ahead.
_MAJOR_WEIGHT = 13


def _is_candidate(src: Rect, dst: Rect, direction: Direction) -> bool:
    """Whether ``dst`` lies ahead of ``src`` in ``direction`` (it may overlap, but must extend beyond)."""
    if direction is Direction.RIGHT:
        return (src.left < dst.left or src.right <= dst.left) and src.right < dst.right
    if direction is Direction.LEFT:
        return (src.right > dst.right or src.left >= dst.right) and src.left > dst.left
    if direction is Direction.UP:
        return (src.bottom < dst.bottom or src.top <= dst.bottom) and src.top < dst.top
    return (src.top > dst.top or src.bottom >= dst.top) and src.bottom > dst.bottom


def _in_beam(src: Rect, dst: Rect, direction: Direction) -> bool:
    if direction in (Direction.LEFT, Direction.RIGHT):
        return dst.top > src.bottom and dst.bottom < src.top
    return dst.right > src.left and dst.left < src.right


def _major_distance(src: Rect, dst: Rect, direction: Direction) -> float:
    gap = {
        Direction.RIGHT: dst.left - src.right,
        Direction.LEFT: src.left - dst.right,
        Direction.UP: dst.bottom - src.top,
        Direction.DOWN: src.bottom - dst.top,
    }[direction]
    return max(0.0, gap)


def _minor_distance(src: Rect, dst: Rect, direction: Direction) -> float:
    if direction in (Direction.LEFT, Direction.RIGHT):
        return abs(src.center_y - dst.center_y)
    return abs(src.center_x - dst.center_x)


def _score(src: Rect, dst: Rect, direction: Direction) -> tuple[int, float, float, float]:
    major = _major_distance(src, dst, direction)
    minor = _minor_distance(src, dst, direction)
    beam = 0 if _in_beam(src, dst, direction) else 1
    # Ties: the top-most, then the left-most (reading order of both scripts we show).
    return (beam, _MAJOR_WEIGHT * major * major + minor * minor, -dst.top, dst.left)


def find_next(current: Rect, candidates: Mapping[str, Rect], direction: Direction) -> str | None:
    """The id of the item to focus when ``direction`` is pressed on ``current``, or None."""
    best: tuple[tuple[int, float, float, float], str] | None = None
    for item_id, rect in candidates.items():
        if not _is_candidate(current, rect, direction):
            continue
        key = (_score(current, rect, direction), item_id)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


class FocusModel:
    """Which item of one screen is focused; remembers it across visits.

    The screen passes the current rectangles of its focusable items on every move, because
    layouts change (lists grow, texts get longer after a language switch).
    """

    def __init__(self, default: str | None = None) -> None:
        self.default = default
        self.focused: str | None = None

    def resolve(self, available: Mapping[str, Rect]) -> str | None:
        """Keep the remembered focus if it still exists, else the default, else the first item.

        Something is always focused while the screen has any focusable item.
        """
        for choice in (self.focused, self.default):
            if choice is not None and choice in available:
                self.focused = choice
                return choice
        if not available:
            self.focused = None
            return None
        self.focused = min(available, key=lambda i: (-available[i].top, available[i].left, i))
        return self.focused

    def move(self, direction: Direction, available: Mapping[str, Rect]) -> bool:
        """Move the focus; False when nothing lies in that direction (the focus stays)."""
        current = self.resolve(available)
        if current is None:
            return False
        others = {k: v for k, v in available.items() if k != current}
        target = find_next(available[current], others, direction)
        if target is None:
            return False
        self.focused = target
        return True

    def focus(self, item_id: str) -> None:
        self.focused = item_id
