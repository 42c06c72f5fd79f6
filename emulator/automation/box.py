"""What the automation API needs from the emulated box, and the errors it may answer with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class BoxError(Exception):
    """A request to the box that could not be carried out; ``status``/``code`` go to HTTP."""

    status = 409
    code = "box_error"


class UnknownKey(BoxError):
    status = 422
    code = "unknown_key"


class UnknownDongle(BoxError):
    status = 404
    code = "dongle_not_found"


class InvalidFault(BoxError):
    status = 422
    code = "invalid_fault"


class ServiceFailed(BoxError):
    """A child process would not start or stop; the message names its log file."""

    status = 503
    code = "service_failed"


class TvNotAnswering(BoxError):
    status = 504
    code = "tv_not_answering"


class NoMeters(BoxError):
    """The demo household has no prepaid meters (a state directory made before they existed)."""

    status = 404
    code = "meters_not_found"


class CardMoveRefused(BoxError):
    """The purchase card cannot go where it was asked to; the message says why."""

    status = 409
    code = "card_move_refused"


class Box(Protocol):
    """The running stack, as the automation API drives it. Every method is thread-safe."""

    def press(self, keys: Sequence[str]) -> None: ...

    def screen(self) -> dict[str, Any]: ...

    def screenshot(self, image_format: str) -> bytes: ...

    def where(self) -> dict[str, Any]: ...

    def dongles(self) -> list[dict[str, Any]]: ...

    def plug(self, serial: str) -> None: ...

    def unplug(self, serial: str) -> None: ...

    def fault(self, serial: str, kind: str, params: Mapping[str, Any]) -> None: ...

    def clear_faults(self, serial: str) -> None: ...

    def network(self) -> dict[str, Any]: ...

    def set_network(self, mode: str, delay_ms: int) -> dict[str, Any]: ...

    def restart_gateway(self) -> dict[str, Any]: ...

    def kill_daemon(self) -> dict[str, Any]: ...

    def start_daemon(self) -> dict[str, Any]: ...

    def meters(self) -> dict[str, Any]: ...

    def move_card(self, to: str) -> dict[str, Any]: ...

    def enter_token(self, digits: str) -> dict[str, Any]: ...
