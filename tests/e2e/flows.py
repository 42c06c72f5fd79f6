"""What a household does with the remote, as automation-API steps: reach an account, pay a bill."""

from __future__ import annotations

from typing import Any

from emulator.automation.client import AutomationClient
from tests.e2e.stack import wait_until

_MAX_PRESSES = 200
_ARROWS = ("left", "up", "right", "down")


def go_home(client: AutomationClient) -> dict[str, Any]:
    state = client.press("home")
    if state["screen"] != "home":
        state = client.wait(screen="home", timeout=15)
    return state


def focus_on(client: AutomationClient, target: str) -> None:
    """Move the focus to ``target`` as a person learns a screen: try each arrow from each place
    the focus has been, going back along the moves already seen, until ``target`` has focus."""
    seen: dict[tuple[str, str], str] = {}  # (focus, arrow) -> focus after pressing it
    state = client.screen()
    for _press in range(_MAX_PRESSES):
        here = state["focus"]
        if here == target:
            return
        route = _route_to_an_untried_arrow(here, seen)
        if route is None:
            break  # every arrow from every reachable place was tried
        for arrow in route:
            before = state["focus"]
            state = client.press(arrow)
            seen[(before, arrow)] = state["focus"]
    raise AssertionError(f"could not move the focus to {target}; it is on {state['focus']}")


def _route_to_an_untried_arrow(start: str, seen: dict[tuple[str, str], str]) -> list[str] | None:
    """The arrows from ``start`` over known moves to a place with an arrow not tried yet, that
    arrow last (breadth first: the shortest such route)."""
    routes: dict[str, list[str]] = {start: []}
    queue = [start]
    while queue:
        place = queue.pop(0)
        for arrow in _ARROWS:
            if (place, arrow) not in seen:
                return [*routes[place], arrow]
            nxt = seen[(place, arrow)]
            if nxt not in routes:
                routes[nxt] = [*routes[place], arrow]
                queue.append(nxt)
    return None


def open_account(client: AutomationClient, account_id: str) -> None:
    go_home(client)
    focus_on(client, f"account:{account_id}")
    client.press("ok")
    client.wait(screen="bills", timeout=15)
    wait_until(lambda: str(client.screen()["focus"]).startswith("bill:"), 20, "the bills to load")


def start_payment(client: AutomationClient, account_id: str) -> dict[str, Any]:
    """From anywhere to the confirm screen of the account's earliest unpaid bill (green key)."""
    open_account(client, account_id)
    client.press("green")
    return client.wait(screen="confirm", timeout=20)


def type_pin(client: AutomationClient, pin: str) -> None:
    client.press(*pin)


def confirm_and_wait_receipt(client: AutomationClient, timeout: float = 30) -> dict[str, Any]:
    client.press("ok")
    return client.wait(screen="receipt", timeout=timeout)


def pay(client: AutomationClient, account_id: str, pin: str) -> dict[str, Any]:
    start_payment(client, account_id)
    type_pin(client, pin)
    return confirm_and_wait_receipt(client)
