"""A gateway configured with a real bank simulator process, and households paying by mandate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import select

from gateway.db.models import OutboxMessage, Payment
from gateway.ledger import balance, check
from gateway.ledger.accounts import BANK_CLEARING, payable
from tests.fixtures.bank import BankProcess
from tests.gateway.helpers import GatewayUnderTest, TestDongle

CARD = "622202******1234"


@dataclass
class Payer:
    dongle: TestDongle
    token: str
    bills: list[dict[str, Any]]
    household_no: str
    bank_token: str
    mandate: dict[str, Any]


@dataclass
class MandateWorld:
    gw: GatewayUnderTest
    bank: BankProcess

    def payer(
        self, card_balance: int = 1_000_000, per_payment: int = 50_000, monthly: int = 200_000
    ) -> Payer:
        """A household with bills, an active dongle and a mandate it pays from by default."""
        dongle, token, bills = self.gw.paying_household()
        household_no = self.gw.call("GET", "/api/v1/household", token).json()["household_no"]
        bank_token = "card-" + uuid.uuid4().hex[:12]
        self.bank.account(bank_token, card_balance)
        bound = self.bind(household_no, bank_token, per_payment, monthly)
        assert bound.status_code == 201, bound.text
        mandate = bound.json()
        chosen = self.gw.call(
            "PUT",
            "/api/v1/funding-sources/default",
            token,
            json={"funding_source": mandate["funding_source_id"]},
        )
        assert chosen.status_code == 200, chosen.text
        return Payer(dongle, token, bills, household_no, bank_token, mandate)

    def bind(
        self, household_no: str, bank_token: str, per_payment: int, monthly: int, **extra: Any
    ) -> requests.Response:
        body = {
            "bank_token": bank_token,
            "card_masked": CARD,
            "per_payment_limit_fen": per_payment,
            "monthly_limit_fen": monthly,
            **extra,
        }
        return self.gw.staff("POST", f"/households/{household_no}/mandates", json=body)

    def create(self, payer: Payer, bill: dict[str, Any]) -> requests.Response:
        return self.gw.create_payment(payer.token, bill)

    def sign(self, payer: Payer, bill: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        created = self.create(payer, bill)
        assert created.status_code == 201, created.text
        body = created.json()
        return body["payment_id"], payer.dongle.sign_payment(body["sign_fields"])

    def payment(self, payer: Payer, payment_id: str) -> dict[str, Any]:
        return self.gw.call("GET", f"/api/v1/payments/{payment_id}", payer.token).json()

    def bill_status(self, payer: Payer, bill: dict[str, Any]) -> str:
        bills = self.gw.call("GET", "/api/v1/bills?status=all", payer.token).json()["bills"]
        return {b["bill_id"]: b["status"] for b in bills}[bill["bill_id"]]

    def ledger(self, payment_id: str) -> dict[str, Any]:
        """The ledger as the payment left it: clearing and payable balances, its outbox rows,
        and whether the ledger check passes."""

        def work(s: Any) -> dict[str, Any]:
            payment = s.get(Payment, payment_id)
            topics = s.scalars(select(OutboxMessage.topic).where(OutboxMessage.key == payment_id))
            return {
                "clearing": balance(s, BANK_CLEARING),
                "payable": balance(s, payable(payment.biller_code)),
                "outbox": sorted(topics),
                "problems": check(s),
            }

        return self.gw.ctx.db.read(work)
