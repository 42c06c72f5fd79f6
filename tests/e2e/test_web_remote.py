"""The web remote in a real headless Chromium: it shows the TV screen and its keys move the app."""

from __future__ import annotations

import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.flows import go_home
from tests.e2e.stack import RunningStack, wait_until


def test_page_shows_the_screen_and_ok_moves_the_app(
    stack: RunningStack, browser: webdriver.Chrome
) -> None:
    client = stack.client
    go_home(client)
    before = client.screen()["focus"]
    assert str(before).startswith("account:")
    browser.get(stack.url + "/")
    image = browser.find_element(By.ID, "screen")
    WebDriverWait(browser, 20).until(
        lambda _d: browser.execute_script(
            "const i = arguments[0]; return i.complete && i.naturalWidth === 1280;", image
        )
    )
    WebDriverWait(browser, 20).until(
        lambda _d: browser.find_element(By.ID, "status").get_attribute("data-screen") == "home"
    )
    browser.find_element(By.ID, "key-ok").click()
    wait_until(lambda: client.screen()["screen"] == "bills", 15, "OK from the page to open bills")
    WebDriverWait(browser, 20).until(
        lambda _d: browser.find_element(By.ID, "status").get_attribute("data-screen") == "bills"
    )


def test_utility_panel_shows_and_sets_the_simulators_faults(
    stack: RunningStack, browser: webdriver.Chrome
) -> None:
    utility = stack.where["utility"]["url"]

    def faults() -> dict[str, object]:
        return requests.get(utility + "/control/state", timeout=10).json()["faults"]

    browser.get(stack.url + "/")
    state = browser.find_element(By.ID, "utility-state")
    WebDriverWait(browser, 20).until(lambda _d: "written off:" in state.text)
    try:
        browser.find_element(By.CSS_SELECTOR, "#utility button[data-fault*='down']").click()
        wait_until(
            lambda: faults() == {"down": True}, 15, "Down from the page to reach the utility"
        )
        WebDriverWait(browser, 20).until(lambda _d: '"down":true' in state.text)
        browser.find_element(By.ID, "utility-clear").click()
        wait_until(lambda: faults() == {}, 15, "Clear faults from the page to reach the utility")
        WebDriverWait(browser, 20).until(lambda _d: "faults: none" in state.text)
    finally:
        requests.delete(utility + "/control/faults", timeout=10)


def test_bank_panel_shows_the_demo_card_and_sets_the_banks_faults(
    stack: RunningStack, browser: webdriver.Chrome
) -> None:
    bank = stack.where["bank"]["url"]

    def faults() -> dict[str, object]:
        return requests.get(bank + "/control/state", timeout=10).json()["faults"]

    browser.get(stack.url + "/")
    state = browser.find_element(By.ID, "bank-state")
    card = stack.where["demo"]["bank_token"]
    WebDriverWait(browser, 20).until(lambda _d: f"cards: {card}: ¥" in state.text)
    try:
        browser.find_element(By.CSS_SELECTOR, "#bank button[data-fault*='down']").click()
        wait_until(lambda: faults()["down"] is True, 15, "Down from the page to reach the bank")
        WebDriverWait(browser, 20).until(lambda _d: 'faults: {"down":true}' in state.text)
        browser.find_element(By.ID, "bank-clear").click()
        wait_until(lambda: faults()["down"] is False, 15, "Clear faults from the page to the bank")
        WebDriverWait(browser, 20).until(lambda _d: "faults: none" in state.text)
    finally:
        requests.delete(bank + "/control/faults", timeout=10)
