"""The demo household's prepaid meters in the running stack: the remote, card and token meters
the gateway registered exist in the emulated home, the purchase card sits in the demo dongle's
slot, a purchase written onto it by the box is credited when the card goes into the meter, a
token the gateway issued is accepted once, and the web remote's meters panel shows and moves it.
Purchases are made by the TV box's own services through the real daemon and gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dongle.card import read_card
from dongle.client import DaemonClient
from emulator.automation.client import AutomationClientError
from emulator.usb.cable import CableControl
from protocol.card import IssuerFile
from tests.e2e.prepaid_buyer import PrepaidBuyer
from tests.e2e.stack import RunningStack

AMOUNT_FEN = 1000  # the demo rules' minimum: ¥10


@pytest.fixture
def buyer(stack: RunningStack, tmp_path: Path) -> Iterator[PrepaidBuyer]:
    buyer = PrepaidBuyer(stack.where, tmp_path)
    try:
        yield buyer
    finally:
        buyer.close()


@pytest.fixture
def card_back_in_box(stack: RunningStack) -> Iterator[None]:
    """Whatever a test did with the card, the household puts it back in the box."""
    yield
    if stack.client.meters()["card"]["at"] != "box":
        stack.client.move_card("box")


def _registered_meters(stack: RunningStack) -> dict[str, str]:
    """kind -> meter number of the demo household's prepaid meters, as the gateway has them."""
    with stack.db() as db:
        rows = db.execute(
            "SELECT m.kind, m.meter_no FROM prepaid_meters m"
            " JOIN utility_accounts a ON m.account_id = a.id"
            " JOIN households h ON a.household_id = h.id WHERE h.household_no = ?",
            (stack.where["demo"]["household_no"],),
        ).fetchall()
    return dict(rows)


def _fulfilment(stack: RunningStack, purchase_id: str) -> str:
    with stack.db() as db:
        row = db.execute("SELECT fulfilment FROM purchases WHERE id = ?", (purchase_id,)).fetchone()
    assert row is not None, f"the gateway has no purchase {purchase_id}"
    return str(row[0])


def test_three_meters_exist_and_the_card_is_in_the_box_slot(stack: RunningStack) -> None:
    meters = stack.client.meters()
    registered = _registered_meters(stack)
    assert meters["card_meter"]["meter_no"] == registered["card"]
    assert meters["token_meter"]["meter_no"] == registered["token"]
    remote = meters["remote_meter"]
    assert remote["meter_no"] == registered["remote"]
    at_utility = requests.get(
        f"{stack.where['utility']['url']}/meters/{remote['account_no']}", timeout=10
    ).json()
    assert (remote["balance_fen"], remote["currency"]) == (
        at_utility["balance_fen"],
        at_utility["currency"],
    )
    assert meters["card"]["at"] == "box"
    with CableControl(stack.where["cable"]["address"]) as cable:
        slot = cable.card_status(stack.where["demo"]["dongle_serial"])
    assert slot["present"] and slot["card"] == meters["card"]["file"]
    # The box reads it through the daemon, as the TV does: the card of the card meter.
    daemon = DaemonClient(stack.where["daemon"]["socket"], client_name="e2e-prepaid")
    try:
        issuer = IssuerFile.parse(read_card(daemon).issuer)
    finally:
        daemon.close()
    assert issuer.meter_no == registered["card"]


def test_a_purchase_on_the_card_is_credited_in_the_meter_and_the_card_goes_back(
    stack: RunningStack, buyer: PrepaidBuyer, card_back_in_box: None
) -> None:
    client = stack.client
    before = client.meters()["card_meter"]
    purchase_id = buyer.buy_on_card(AMOUNT_FEN)
    assert _fulfilment(stack, purchase_id) == "done"
    assert client.meters()["card"]["count"] == before["count"] + 1

    moved = client.move_card("meter")
    assert moved["card_at"] == "meter"
    assert moved["outcome"]["outcome"] == "credited"
    assert moved["outcome"]["amount_fen"] == AMOUNT_FEN
    assert moved["outcome"]["written_back"] is True
    after = client.meters()
    assert after["card"]["at"] == "meter"
    assert after["card_meter"]["count"] == before["count"] + 1
    assert after["card_meter"]["balance_fen"] == before["balance_fen"] + AMOUNT_FEN
    assert after["card_meter"]["last_outcome"] == moved["outcome"]
    with pytest.raises(AutomationClientError) as again:
        client.move_card("meter")
    assert again.value.code == "card_move_refused"

    assert client.move_card("box") == {"card_at": "box", "outcome": None}
    with CableControl(stack.where["cable"]["address"]) as cable:
        slot = cable.card_status(stack.where["demo"]["dongle_serial"])
    assert slot["card"] == after["card"]["file"]
    # The meter's write-back is what lets the box sell the next purchase on this card.
    assert buyer.buy_on_card(AMOUNT_FEN) != purchase_id
    assert client.move_card("meter")["outcome"]["outcome"] == "credited"


def test_a_token_typed_twice_is_refused_the_second_time(
    stack: RunningStack, buyer: PrepaidBuyer
) -> None:
    client = stack.client
    before = client.meters()["token_meter"]["credit_wh"]
    token = buyer.buy_token(AMOUNT_FEN)

    first = client.enter_token(
        f"{token[:4]} {token[4:8]} {token[8:12]} {token[12:16]} {token[16:]}"
    )
    assert first["accepted"] is True and first["units"] > 0
    assert first["credit_wh"] == before + first["units"] * 100

    second = client.enter_token(token)
    assert second["accepted"] is False
    assert second["reason"] == "used"
    assert second["credit_wh"] == first["credit_wh"]
    assert client.meters()["token_meter"]["last_outcome"]["reason"] == "used"


def test_the_meters_panel_shows_the_meters_and_moves_the_card(
    stack: RunningStack, browser: webdriver.Chrome, card_back_in_box: None
) -> None:
    client = stack.client
    meters = client.meters()
    browser.get(stack.url + "/")
    card_line = browser.find_element(By.ID, "meters-card")
    state_line = browser.find_element(By.ID, "meters-state")
    answer_line = browser.find_element(By.ID, "token-answer")
    WebDriverWait(browser, 20).until(lambda _d: card_line.get_attribute("data-at") == "box")
    for meter in ("card_meter", "token_meter", "remote_meter"):
        assert meters[meter]["meter_no"] in state_line.text

    browser.find_element(By.CSS_SELECTOR, "#meters button[data-card-to='meter']").click()
    WebDriverWait(browser, 20).until(lambda _d: card_line.get_attribute("data-at") == "meter")
    assert client.meters()["card"]["at"] == "meter"
    WebDriverWait(browser, 20).until(lambda _d: answer_line.text.startswith("meter: "))

    browser.find_element(By.CSS_SELECTOR, "#meters button[data-card-to='box']").click()
    WebDriverWait(browser, 20).until(lambda _d: card_line.get_attribute("data-at") == "box")
    assert client.meters()["card"]["at"] == "box"

    digits = browser.find_element(By.ID, "token-digits")
    digits.send_keys("1234 5678 9012 3456 7890")
    browser.find_element(By.CSS_SELECTOR, "#token-form button[type='submit']").click()
    WebDriverWait(browser, 20).until(
        lambda _d: answer_line.get_attribute("data-accepted") == "false"
    )
    assert "refused (invalid)" in answer_line.text
    assert client.meters()["token_meter"]["last_outcome"]["reason"] == "invalid"
