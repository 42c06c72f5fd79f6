"""The focus engine's geometry, without Kivy (y grows upwards, as in Kivy)."""

from __future__ import annotations

from tvapp.focus import Direction, FocusModel, Rect, find_next

# A 3x2 grid of cards and a row of buttons below, like the home screen.
GRID = {
    "a": Rect(0, 300, 100, 80),
    "b": Rect(120, 300, 100, 80),
    "c": Rect(240, 300, 100, 80),
    "d": Rect(0, 200, 100, 80),
    "e": Rect(120, 200, 100, 80),
    "history": Rect(0, 50, 150, 60),
    "settings": Rect(170, 50, 150, 60),
}


def _next(origin: str, direction: Direction) -> str | None:
    others = {k: v for k, v in GRID.items() if k != origin}
    return find_next(GRID[origin], others, direction)


def test_right_moves_to_the_neighbour_in_the_same_row() -> None:
    assert _next("a", Direction.RIGHT) == "b"


def test_down_moves_to_the_item_below_not_diagonally() -> None:
    assert _next("b", Direction.DOWN) == "e"


def test_down_from_a_row_without_item_below_takes_the_nearest_one_ahead() -> None:
    others = {k: v for k, v in GRID.items() if k not in ("c", "settings", "history")}
    assert find_next(GRID["c"], others, Direction.DOWN) == "e"


def test_down_prefers_the_item_straight_below_even_two_rows_down() -> None:
    assert _next("c", Direction.DOWN) == "settings"


def test_nothing_in_that_direction_returns_none() -> None:
    assert _next("a", Direction.LEFT) is None
    assert _next("a", Direction.UP) is None


def test_an_item_overlapping_in_the_beam_beats_a_closer_diagonal_one() -> None:
    src = Rect(0, 0, 100, 40)
    beam = Rect(0, 300, 100, 40)  # far above, straight up
    diagonal = Rect(150, 60, 100, 40)  # close, but off to the side
    assert find_next(src, {"beam": beam, "diag": diagonal}, Direction.UP) == "beam"


def test_equal_candidates_break_ties_top_most_then_left_most_then_id() -> None:
    src = Rect(0, 100, 50, 50)
    upper = Rect(100, 130, 50, 50)
    lower = Rect(100, 70, 50, 50)
    assert find_next(src, {"lower": lower, "upper": upper}, Direction.RIGHT) == "upper"
    same = Rect(100, 100, 50, 50)
    assert find_next(src, {"z": same, "m": same}, Direction.RIGHT) == "m"


def test_model_starts_on_the_default_and_remembers_the_last_focus() -> None:
    model = FocusModel(default="history")
    assert model.resolve(GRID) == "history"
    assert model.move(Direction.UP, GRID) and model.focused in ("d", "e")
    remembered = model.focused
    assert model.resolve(GRID) == remembered  # coming back to the screen


def test_model_falls_back_to_the_first_item_when_the_focus_disappears() -> None:
    model = FocusModel(default="gone")
    model.focus("also-gone")
    assert model.resolve(GRID) == "a"  # top-most, then left-most
    assert FocusModel().resolve({}) is None


def test_a_blocked_move_keeps_the_focus() -> None:
    model = FocusModel(default="a")
    assert not model.move(Direction.LEFT, GRID)
    assert model.focused == "a"
