"""A shop (代售点) on a running gateway: added and its float topped up through the staff API, its
dongle registered with the shop role, a box with an open session; and customers' prepaid meters
on accounts bound to no household. Rules and meters are set through the gateway's own functions
(as the operator's command line does), everything else through HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import select

from gateway.bills_import import import_rows
from gateway.db.models import UtilityAccount
from gateway.prepaid.meters import add_meter
from gateway.prepaid.rules import DEFAULT_PRESETS, DEFAULTS, Rules, save_rules
from gateway.prepaid.tariff import Tier
from tests.gateway.helpers import GatewayUnderTest, TestDongle, bill_rows, unb64

BILLER = "SGCC-BJ"  # the biller of tests.gateway.helpers.bill_rows
TARIFF = (Tier(2_160_000, 56030), Tier(4_200_000, 61030), Tier(None, 86030))
COMMISSION_BP = 50  # 0.5%


def register(
    gw: GatewayUnderTest, dongle: TestDongle, household_no: str, role: str
) -> requests.Response:
    nonce = gw.staff("POST", "/attestation-nonce", json={}).json()["nonce"]
    body = {"household_no": household_no, "attestation": dongle.attest(unb64(nonce)), "role": role}
    return gw.staff("POST", "/dongles", json=body)


@dataclass
class Shop:
    gw: GatewayUnderTest
    shop_no: str
    dongle: TestDongle
    token: str

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.gw.call(method, "/api/v1" + path, self.token, **kwargs)

    def top_up(self, amount_fen: int) -> None:
        body = {
            "amount_fen": amount_fen,
            "currency": "CNY",
            "reference": f"CASH-{uuid.uuid4().hex[:12]}",
            "channel": "shop",
        }
        path = f"/households/{self.shop_no}/wallet/credits"
        assert self.gw.staff("POST", path, json=body).status_code == 200

    def sell(self, amount_fen: int, key: str | None = None, **customer: Any) -> requests.Response:
        body = {"amount_fen": amount_fen, "currency": "CNY", **customer}
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return self.call("POST", "/shop/sales", json=body, headers=headers)

    def sign(self, created: dict[str, Any]) -> dict[str, Any]:
        return self.dongle.sign_payment(created["sign_fields"])

    def pay(self, created: dict[str, Any]) -> requests.Response:
        return self.gw.authorize(created["payment_id"], self.sign(created))

    def report(self, day: str) -> dict[str, Any]:
        answer = self.call("GET", "/shop/report", params={"date": day})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def float_fen(self) -> int:
        shops = self.gw.staff("GET", "/shops").json()["shops"]
        return next(s["float_fen"] for s in shops if s["shop_no"] == self.shop_no)


def new_shop(gw: GatewayUnderTest, float_fen: int) -> Shop:
    shop_no = "S" + str(uuid.uuid4().int)[:9]
    body = {
        "shop_no": shop_no,
        "name": "楼下便利店",
        "address": "北京市朝阳区建设路1号底商",
        "commission_bp": COMMISSION_BP,
    }
    added = gw.staff("POST", "/shops", json=body)
    assert added.status_code == 201, added.text
    dongle = gw.manufacturer.new_dongle()
    dongle.generate_key()
    assert register(gw, dongle, shop_no, "shop").status_code == 201
    assert gw.activate(dongle).status_code == 200
    shop = Shop(gw, shop_no, dongle, gw.session_token(dongle))
    if float_fen:
        shop.top_up(float_fen)
    return shop


def customer_meter(gw: GatewayUnderTest, kind: str = "remote") -> str:
    """A prepaid meter of ``kind`` on a fresh electricity account bound to no household; the
    account's 户号."""
    account_no = str(uuid.uuid4().int)[:10]

    def setup(s: Any) -> None:
        import_rows(s, bill_rows(account_no, "李娜", 1), "test")
        account = s.scalar(select(UtilityAccount).where(UtilityAccount.account_no == account_no))
        assert account.household_id is None
        save_rules(
            s, Rules(biller_code=BILLER, presets_fen=DEFAULT_PRESETS, tariff=TARIFF, **DEFAULTS)
        )
        add_meter(s, "electricity", account_no, kind, "R" + account_no, now=1)

    gw.ctx.db.write(setup)
    return account_no
