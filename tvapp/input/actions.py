"""The actions a remote can ask of the app, whatever the key source."""

from __future__ import annotations

DIRECTIONS = ("up", "down", "left", "right")
DIGITS = tuple(str(d) for d in range(10))
COLOURS = ("red", "green", "yellow", "blue")
ACTIONS: frozenset[str] = frozenset((*DIRECTIONS, "ok", "back", "home", *DIGITS, *COLOURS))


class UnknownAction(ValueError):
    """An action name outside the remote's vocabulary."""

    def __init__(self, action: object) -> None:
        super().__init__(
            f"unknown remote action {action!r}: use one of {', '.join(sorted(ACTIONS))}"
        )


def check_action(action: object) -> str:
    """Return ``action`` when it is one of ACTIONS, else raise UnknownAction."""
    if not isinstance(action, str) or action not in ACTIONS:
        raise UnknownAction(action)
    return action
