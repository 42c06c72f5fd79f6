"""What a household does with the remote, as automation-API steps: reach an account, pay a bill."""

from __future__ import annotations

from typing import Any

from emulator.automation.client import AutomationClient
from tests.e2e.stack import wait_until

_MAX_STEPS = 8


def go_home(client: AutomationClient) -> dict[str, Any]:
    state = client.press("home")
    if state["screen"] != "home":
        state = client.wait(screen="home", timeout=15)
    return state


def focus_on(client: AutomationClient, target: str) -> None:
    """Move the focus to ``target`` the way a person searches a screen: sweep each arrow
    direction to its end, in turn, a few rounds."""
    state = client.screen()
    for _round in range(4):
        for direction in ("left", "up", "right", "down"):
            for _step in range(_MAX_STEPS):
                if state["focus"] == target:
                    return
                before = state["focus"]
                state = client.press(direction)
                if state["focus"] == before:
                    break
    if state["focus"] != target:
        raise AssertionError(f"could not move the focus to {target}; it is on {state['focus']}")


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
