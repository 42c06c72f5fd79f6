"""A household with a card meter, its purchase card (the emulator's virtual CPU card) and the
meter itself (the emulator's virtual card meter), and boxes that drive the card with its APDUs
and talk to a real gateway over HTTP: the setting of the card-session and sweep tests."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import func, select

from emulator.card import VirtualPurchaseCard, issue_card
from emulator.meters.card_meter import VirtualCardMeter
from gateway.db.models import (
    CardIssue,
    Household,
    OutboxMessage,
    PrepaidMeter,
    Purchase,
    UtilityAccount,
)
from gateway.db.models import CardRead as CardReadRow
from gateway.funding.wallet import credit_wallet
from gateway.prepaid.meters import add_meter
from gateway.prepaid.rules import DEFAULT_PRESETS, DEFAULTS, Rules, save_rules
from gateway.prepaid.tariff import Tier
from protocol.card import (
    SFIS,
    CardRead,
    check_response,
    get_challenge,
    read_binary,
    vending_master_key,
)
from tests.gateway.helpers import GatewayUnderTest, TestDongle

BILLER = "SGCC-BJ"  # the biller of tests.gateway.helpers.bill_rows
TARIFF = (Tier(2_160_000, 56030), Tier(4_200_000, 61030), Tier(None, 86030))
WALLET_FEN = 100_000


@dataclass
class Box:
    """A TV box (or a shop's terminal) with a card slot and an open device session."""

    gw: GatewayUnderTest
    dongle: TestDongle
    token: str

    def read(self, card: VirtualPurchaseCard) -> dict[str, str]:
        files = [check_response(card.transmit(read_binary(sfi))) for sfi in SFIS]
        return CardRead(*files).to_json()

    def session(self, card: VirtualPurchaseCard) -> requests.Response:
        """GET CHALLENGE on the card, read its files, and ask the gateway what to do."""
        challenge = check_response(card.transmit(get_challenge()))
        body = {"card": self.read(card), "challenge": challenge.hex()}
        return self.gw.call("POST", "/api/v1/cards/session", self.token, json=body)

    def write(self, card: VirtualPurchaseCard) -> dict[str, Any]:
        """A session whose write-card block (if any) is run on the card; the gateway's answer."""
        response = self.session(card)
        assert response.status_code == 200, response.text
        answer = response.json()
        for apdu in answer.get("apdus", []):
            check_response(card.transmit(bytes.fromhex(apdu)))
        return answer

    def confirm(self, card: VirtualPurchaseCard) -> requests.Response:
        body = {"card": self.read(card)}
        return self.gw.call("POST", "/api/v1/cards/confirm", self.token, json=body)


@dataclass
class CardWorld:
    gw: GatewayUnderTest
    household_no: str
    box: Box
    meter_id: str
    meter_no: str
    master: bytes
    card: VirtualPurchaseCard
    meter: VirtualCardMeter

    def buy(self, amount_fen: int = 10000, box: Box | None = None) -> dict[str, Any]:
        """Create the purchase with the card as the box reads it, sign it and authorize it."""
        box = box or self.box
        created = self.gw.call(
            "POST",
            "/api/v1/purchases",
            box.token,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "meter_id": self.meter_id,
                "amount_fen": amount_fen,
                "currency": "CNY",
                "card": box.read(self.card),
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        signed = box.dongle.sign_payment(body["sign_fields"])
        authorized = self.gw.authorize(body["payment_id"], signed)
        assert authorized.status_code == 200, authorized.text
        return body["purchase"]

    def purchase(self, purchase_id: str) -> dict[str, Any]:
        answer = self.gw.call("GET", f"/api/v1/purchases/{purchase_id}", self.box.token)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def row(self, purchase_id: str) -> Purchase:
        return self.gw.ctx.db.read(lambda s: s.get(Purchase, purchase_id))

    def meter_row(self) -> PrepaidMeter:
        return self.gw.ctx.db.read(lambda s: s.get(PrepaidMeter, self.meter_id))

    def issues(self, purchase_id: str) -> list[CardIssue]:
        query = select(CardIssue).where(CardIssue.purchase_id == purchase_id)
        return self.gw.ctx.db.read(lambda s: list(s.scalars(query.order_by(CardIssue.id))))

    def reads(self) -> list[CardReadRow]:
        query = select(CardReadRow).where(CardReadRow.meter_id == self.meter_id)
        return self.gw.ctx.db.read(lambda s: list(s.scalars(query.order_by(CardReadRow.id))))

    def notifications(self, payment_id: str) -> int:
        query = select(func.count()).where(OutboxMessage.key == payment_id)
        return self.gw.ctx.db.read(lambda s: s.scalar(query))

    def wallet_fen(self) -> int:
        sources = self.gw.call("GET", "/api/v1/funding-sources", self.box.token).json()
        return next(s["balance_fen"] for s in sources["funding_sources"] if s["kind"] == "wallet")

    def other_box(self) -> Box:
        """Another household's box (a neighbour's, or a shop's terminal)."""
        household_no = self.gw.household()
        dongle = self.gw.provision(household_no)
        return Box(self.gw, dongle, self.gw.session_token(dongle))

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """``tvpay-gateway`` as its own process on this gateway's state and database."""
        config = self.gw.ctx.config
        command = [sys.executable, "-m", "gateway.cli", "--state-dir", str(config.state_dir)]
        command += ["--database-url", config.database_url, *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr, done.stderr
        return done


def fresh_card(meter_no: str, master: bytes) -> VirtualPurchaseCard:
    """A newly personalised purchase card for ``meter_no`` under ``master``."""
    return issue_card(
        serial=secrets.token_bytes(8), biller=BILLER, meter_no=meter_no, master=master, path=None
    )


def card_world(gw: GatewayUnderTest) -> CardWorld:
    """A household whose electricity account has a card meter with a fresh card, a wallet
    holding ¥1,000.00, and a box with an open session."""
    household_no = gw.household()
    gw.bills(household_no, months=1, fund=False)  # the account, bound, and its biller
    meter_no = f"{secrets.randbelow(10**12):012d}"
    master = vending_master_key(gw.ctx.keys.vending_secret, BILLER)
    card = fresh_card(meter_no, master)

    def setup(s: Any) -> str:
        household = s.scalar(select(Household).where(Household.household_no == household_no))
        account = s.scalar(
            select(UtilityAccount).where(UtilityAccount.household_id == household.id)
        )
        presets = {"presets_fen": DEFAULT_PRESETS, "tariff": TARIFF}
        save_rules(s, Rules(biller_code=BILLER, **DEFAULTS, **presets))
        meter = add_meter(
            s, "electricity", account.account_no, "card", meter_no, card.serial.hex(), now=1
        )
        credit_wallet(s, "test", household_no, WALLET_FEN, "CNY", f"fund-{meter_no}", "shop")
        return meter.id

    meter_id = gw.ctx.db.write(setup)
    dongle = gw.provision(household_no)
    box = Box(gw, dongle, gw.session_token(dongle))
    meter = VirtualCardMeter(meter_no, master)
    return CardWorld(gw, household_no, box, meter_id, meter_no, master, card, meter)
