"""A household with a prepaid meter on a running gateway, for the prepaid purchase tests: the
meter registered and its utility's rules set through the gateway's own functions, everything
else through HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import select

from gateway.db.models import Bill, UtilityAccount
from gateway.funding.wallet import credit_wallet
from gateway.prepaid.meters import StsIdentity, add_meter
from gateway.prepaid.rules import DEFAULT_PRESETS, DEFAULTS, Rules, save_rules
from gateway.prepaid.tariff import Tier
from tests.gateway.helpers import GatewayUnderTest, TestDongle

BILLER = "SGCC-BJ"  # the biller of tests.gateway.helpers.bill_rows
TARIFF = (Tier(2_160_000, 56030), Tier(4_200_000, 61030), Tier(None, 86030))
WALLET_FEN = 500_000
TOKEN_DRN = "01234567897"  # 11 digits, Luhn check digit 7
CARD_NO = "000011112222"
CARD_SERIAL = "0123456789abcdef"


@dataclass
class PrepaidHousehold:
    gw: GatewayUnderTest
    household_no: str
    account_no: str
    dongle: TestDongle
    token: str
    meter_id: str

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.gw.call(method, "/api/v1" + path, self.token, **kwargs)

    def buy(self, amount_fen: int, key: str | None = None, **extra: Any) -> requests.Response:
        body = {"meter_id": self.meter_id, "amount_fen": amount_fen, "currency": "CNY", **extra}
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return self.call("POST", "/purchases", json=body, headers=headers)

    def pay(self, created: dict[str, Any]) -> requests.Response:
        signed = self.dongle.sign_payment(created["sign_fields"])
        return self.gw.authorize(created["payment_id"], signed)

    def purchase(self, purchase_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/purchases/{purchase_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wallet(self) -> int:
        sources = self.call("GET", "/funding-sources").json()["funding_sources"]
        return next(s["balance_fen"] for s in sources if s["kind"] == "wallet")


def prepaid_household(gw: GatewayUnderTest, kind: str, **rules: int) -> PrepaidHousehold:
    """A household with a funded wallet, an active dongle, a session, and one prepaid meter of
    ``kind`` on its electricity account; ``rules`` override the defaults."""
    household_no = gw.household()
    bill_id = gw.bills(household_no, months=1, fund=False)[0]

    def setup(s: Any) -> tuple[str, str]:
        account = s.scalar(
            select(UtilityAccount)
            .join(Bill, Bill.account_id == UtilityAccount.id)
            .where(Bill.id == bill_id)
        )
        save_rules(
            s,
            Rules(
                biller_code=BILLER,
                presets_fen=DEFAULT_PRESETS,
                tariff=TARIFF,
                **{**DEFAULTS, **rules},
            ),
        )
        meter_no = {"token": TOKEN_DRN, "card": CARD_NO}.get(kind, "R" + account.account_no)
        meter = add_meter(
            s,
            "electricity",
            account.account_no,
            kind,
            meter_no,
            card_serial=CARD_SERIAL if kind == "card" else None,
            sts=StsIdentity(123456, 1, 1) if kind == "token" else None,
            now=1,
        )
        credit_wallet(s, "test", household_no, WALLET_FEN, "CNY", f"fund-{meter.id}", "shop")
        return account.account_no, meter.id

    account_no, meter_id = gw.ctx.db.write(setup)
    dongle = gw.provision(household_no)
    return PrepaidHousehold(
        gw, household_no, account_no, dongle, gw.session_token(dongle), meter_id
    )
