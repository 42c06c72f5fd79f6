"""Remote and card meters through real processes and real cards, on SQLite and PostgreSQL: the
balance asked of the utility simulator (and the last known one when it is down), a remote
purchase credited through the dispatcher, and a card purchase checked against the virtual card
before the PIN."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from emulator.card.issue import issue_card
from gateway.billers import set_notify_url
from gateway.ledger import check
from protocol.card import SFIS, read_binary, vending_master_key
from tests.emulator.utility import UtilityUnderTest, utility_process
from tests.gateway.helpers import GatewayUnderTest
from tests.gateway.prepaid_world import BILLER, CARD_NO, CARD_SERIAL, prepaid_household
from tests.gateway.writeoff_env import WriteoffEnv

DAILY_WH = 10_000
PRICE = 56030  # 10 kWh a day cost ¥5.61 at the simulator's rounding


@pytest.fixture
def utility(gw: GatewayUnderTest, tmp_path: Path) -> Iterator[UtilityUnderTest]:
    with utility_process(tmp_path / "utility", gw.ctx.keys.receipt_public_pem.encode()) as running:
        running.set_clock(int(time.time()) + 3600)  # the gateway's payments are due at once
        yield running


def seed_prepaid(utility: UtilityUnderTest, account_no: str, balance_fen: int) -> None:
    since = datetime.fromtimestamp(int(utility.clock_file.read_text()), UTC) - timedelta(days=40)
    account = {
        "account_no": account_no,
        "balance_fen": balance_fen,
        "daily_use_wh": DAILY_WH,
        "price_milli_fen_per_kwh": PRICE,
        "since": since.date().isoformat(),
    }
    utility.control("POST", "/control/seed", {"prepaid": [account]})


def utility_balance(utility: UtilityUnderTest, account_no: str) -> int:
    return requests.get(f"{utility.url}/meters/{account_no}", timeout=10).json()["balance_fen"]


def test_a_remote_meter_shows_the_utilitys_balance_and_the_last_one_when_it_is_down(
    gw: GatewayUnderTest, utility: UtilityUnderTest
) -> None:
    home = prepaid_household(gw, "remote")
    gw.ctx.db.write(lambda s: set_notify_url(s, [BILLER], utility.url))
    seed_prepaid(utility, home.account_no, 40 * 561 + 3000)  # 40 days of ¥5.61 used since
    live = utility_balance(utility, home.account_no)
    meter = home.call("GET", "/meters").json()["meters"][0]
    assert meter["kind"] == "remote" and meter["rules"]["presets_fen"] == [
        5000,
        10000,
        20000,
        50000,
    ]
    assert meter["balance"]["amount_fen"] == live
    assert meter["balance"]["days_left"] == live // 561
    assert meter["balance"]["low"] is (live < 2000 or live // 561 <= 7)

    utility.control("POST", "/control/faults", {"down": True})
    stale = home.call("GET", "/meters").json()["meters"][0]["balance"]
    assert (stale["amount_fen"], stale["days_left"]) == (live, None)  # last known, no days


def test_a_remote_purchase_is_credited_by_the_utility_through_the_dispatcher(
    gw: GatewayUnderTest, utility: UtilityUnderTest, tmp_path: Path
) -> None:
    home = prepaid_household(gw, "remote")
    gw.ctx.db.write(lambda s: set_notify_url(s, [BILLER], utility.url))
    seed_prepaid(utility, home.account_no, 100_000)
    before = utility_balance(utility, home.account_no)
    created = home.buy(5000).json()
    assert home.pay(created).status_code == 200
    env = WriteoffEnv(gw, utility, tmp_path)
    assert env.dispatch() == {"delivered": 1, "failed": 0}
    done = home.purchase(created["purchase"]["purchase_id"])
    assert (done["fulfilment"], done["payment_status"]) == ("done", "credited")
    assert utility_balance(utility, home.account_no) == before + 5000
    assert gw.ctx.db.read(check) == []


def read_card(card: Any) -> dict[str, str]:
    """The box's READ BINARY of the three files, as POST /purchases takes them."""
    files = {}
    for sfi, name in zip(SFIS, ("issuer", "purchase", "writeback"), strict=True):
        answer = card.transmit(read_binary(sfi))
        assert answer[-2:] == b"\x90\x00"
        files[name] = answer[:-2].hex()
    return files


def test_a_card_purchase_checks_the_card_before_the_pin(gw: GatewayUnderTest) -> None:
    home = prepaid_household(gw, "card")
    master = vending_master_key(gw.ctx.keys.vending_secret, BILLER)
    card = issue_card(
        serial=bytes.fromhex(CARD_SERIAL), biller=BILLER, meter_no=CARD_NO, master=master, path=None
    )
    missing = home.buy(5000)
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "card_required")
    forged = issue_card(
        serial=bytes.fromhex(CARD_SERIAL),
        biller=BILLER,
        meter_no=CARD_NO,
        master=bytes(16),
        path=None,
    )
    refused = home.buy(5000, card=read_card(forged))
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "card_not_authentic")
    other = issue_card(
        serial=bytes.fromhex(CARD_SERIAL),
        biller=BILLER,
        meter_no="999988887777",
        master=master,
        path=None,
    )
    wrong = home.buy(5000, card=read_card(other))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "card_wrong_meter")
    assert home.call("GET", "/purchases").json()["purchases"] == []

    created = home.buy(5000, card=read_card(card))
    assert created.status_code == 201, created.text
    assert created.json()["purchase"]["card_count"] == 1
    paid_at = int(time.time())
    assert home.pay(created.json()).status_code == 200
    bought = home.purchase(created.json()["purchase"]["purchase_id"])
    assert bought["fulfilment"] == "pending"
    fulfil_by = int(datetime.fromisoformat(bought["fulfil_by"].replace("Z", "+00:00")).timestamp())
    assert 0 <= fulfil_by - paid_at - 72 * 3600 <= 5
    assert home.wallet() == 495_000
