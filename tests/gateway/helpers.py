"""Test doubles built from `cryptography` directly: a manufacturer CA, dongles that attest and
sign like the real ones (protocol.signing layouts), and a client for a running gateway."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from gateway import staff
from gateway.bills_import import BillRow, import_rows
from gateway.context import GatewayContext
from gateway.funding.wallet import credit_wallet
from gateway.registry import create_household
from protocol import pki
from protocol.display import canonical_text, display_hash
from protocol.signing import (
    Algorithm,
    PaymentAuthorization,
    ProvisioningAttestation,
    SessionChallenge,
    public_key_bytes,
    sign,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def shown_text(fields: dict[str, Any]) -> str:
    """A confirmation text stating the amount the way the TV app writes it."""
    yuan, fen = divmod(fields["amount_fen"], 100)
    return canonical_text(
        ["确认缴费", f"户号：{fields['account'][-4:]}", f"金额：¥{yuan:,}.{fen:02d}"]
    )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.01)


@dataclass
class Manufacturer:
    authority: pki.CertificateAuthority
    ca_path: Path

    @classmethod
    def create(cls, directory: Path, name: str = "Test Dongle Factory CA") -> Manufacturer:
        authority = pki.make_ca(pki.subject_name(name), days=3650)
        path = directory / "manufacturer-ca.pem"
        path.write_bytes(pki.certificate_pem(authority.certificate))
        return cls(authority, path)

    def new_dongle(self) -> TestDongle:
        dongle_id = "TVP" + uuid.uuid4().hex[:10].upper()
        attest_key = pki.new_key()
        cert = self.authority.issue(
            pki.subject_name(f"attestation {dongle_id}", serial=dongle_id),
            attest_key.public_key(),
            days=3650,
        )
        return TestDongle(dongle_id, attest_key, pki.certificate_der(cert))


@dataclass
class TestDongle:
    dongle_id: str
    attest_key: ec.EllipticCurvePrivateKey | None
    attest_cert: bytes
    key: ec.EllipticCurvePrivateKey | None = None
    key_rev: int = 0
    counter: int = 0
    signed: dict[str, dict[str, Any]] = field(default_factory=dict)

    __test__ = False  # not a pytest class

    @classmethod
    def payment_signer(
        cls, dongle_id: str, key: ec.EllipticCurvePrivateKey, key_rev: int, counter: int
    ) -> TestDongle:
        """A provisioned dongle rebuilt from its payment key (in another process); cannot attest."""
        return cls(dongle_id, None, b"", key, key_rev, counter)

    def generate_key(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.key_rev += 1

    def attest(self, nonce: bytes) -> dict[str, Any]:
        assert self.attest_key is not None
        public = public_key_bytes(self.key.public_key()) if self.key else b""
        payload = ProvisioningAttestation(
            Algorithm.ES256, self.dongle_id, self.key_rev, public, nonce
        )
        return {
            "dongle_id": self.dongle_id,
            "key_rev": self.key_rev,
            "public_key": b64(public),
            "nonce": b64(nonce),
            "signature": b64(sign(self.attest_key, payload.signed_bytes())),
            "certificates": [b64(self.attest_cert)],
        }

    def sign_session(self, challenge: dict[str, Any]) -> dict[str, Any]:
        assert self.key is not None
        payload = SessionChallenge(
            Algorithm.ES256,
            challenge["gateway_id"],
            self.dongle_id,
            self.key_rev,
            unb64(challenge["challenge"]),
            challenge["timestamp"],
        )
        return {
            "key_rev": self.key_rev,
            "challenge": challenge["challenge"],
            "timestamp": challenge["timestamp"],
            "signature": b64(sign(self.key, payload.signed_bytes())),
        }

    def sign_payment(self, fields: dict[str, Any], text: str | None = None) -> dict[str, Any]:
        """Like SIGN_PAYMENT: next counter, and the same answer again for a known payment id.

        Signs the hash of ``text`` (by default ``shown_text(fields)``); the answer is the body of
        the authorize call, confirmation text included."""
        assert self.key is not None
        if fields["payment_id"] in self.signed:
            return self.signed[fields["payment_id"]]
        self.counter += 1
        text = shown_text(fields) if text is None else text
        payload = PaymentAuthorization(
            alg=Algorithm.ES256,
            dongle_id=self.dongle_id,
            key_rev=self.key_rev,
            counter=self.counter,
            **{**fields, "challenge": unb64(fields["challenge"])},
            display_hash=display_hash(text),
        )
        answer = {
            "dongle_id": self.dongle_id,
            "key_rev": self.key_rev,
            "counter": self.counter,
            "signature": b64(sign(self.key, payload.signed_bytes())),
            "display_text": text,
        }
        self.signed[fields["payment_id"]] = answer
        return answer


def bill_rows(
    account_no: str, holder: str, months: int, utility: str = "electricity"
) -> list[BillRow]:
    return [
        BillRow(
            biller_code="SGCC-BJ" if utility == "electricity" else f"TEST-{utility.upper()}",
            biller_name="国网北京市电力公司",
            utility=utility,
            account_no=account_no,
            holder_name=holder,
            address="北京市朝阳区建设路1号",
            bill_ref=f"{utility[0].upper()}-2025{m:02d}",  # as utilities number bills
            period=f"2025-{m:02d}",
            amount_fen=10000 + m,
            currency="CNY",
            due_date=f"2025-{m:02d}-28",
            usage_milli=200_000 + m,
        )
        for m in range(1, months + 1)
    ]


@dataclass
class GatewayUnderTest:
    url: str
    ctx: GatewayContext
    manufacturer: Manufacturer
    staff_token: str
    http: requests.Session

    @classmethod
    def setup(cls, url: str, ctx: GatewayContext, manufacturer: Manufacturer) -> GatewayUnderTest:
        token = ctx.db.write(lambda s: staff.add_staff(s, "tester"))
        return cls(url, ctx, manufacturer, token, requests.Session())

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def staff(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.call(method, "/api/v1/staff" + path, self.staff_token, **kwargs)

    def household(self, household_no: str | None = None) -> str:
        number = household_no or str(uuid.uuid4().int)[:10]
        self.ctx.db.write(
            lambda s: create_household(s, "test", number, "张伟", "北京市朝阳区建设路1号")
        )
        return number

    def bills(self, household_no: str, months: int = 3, fund: bool = True) -> list[str]:
        """Import bills for a fresh account, bind it to the household and (``fund``) put their
        total in its wallet; returns the bill ids."""
        from sqlalchemy import select

        from gateway.db.models import Bill, Household, UtilityAccount

        account_no = str(uuid.uuid4().int)[:10]
        rows = bill_rows(account_no, "张伟", months)

        def work(s: Any) -> list[str]:
            import_rows(s, rows, "test")
            account = s.scalar(
                select(UtilityAccount).where(UtilityAccount.account_no == account_no)
            )
            household = s.scalar(select(Household).where(Household.household_no == household_no))
            account.household_id, account.bound_at = household.id, 1
            if fund:  # enough in the wallet to pay every bill imported here
                total = sum(row.amount_fen for row in rows)
                credit_wallet(s, "test", household_no, total, "CNY", f"fund-{account_no}", "shop")
            return list(
                s.scalars(
                    select(Bill.id).where(Bill.account_id == account.id).order_by(Bill.period)
                )
            )

        return self.ctx.db.write(work)

    def register(self, dongle: TestDongle, household_no: str) -> requests.Response:
        nonce = self.staff("POST", "/attestation-nonce", json={}).json()["nonce"]
        return self.staff(
            "POST",
            "/dongles",
            json={"household_no": household_no, "attestation": dongle.attest(unb64(nonce))},
        )

    def activate(self, dongle: TestDongle) -> requests.Response:
        path = f"/dongles/{dongle.dongle_id}"
        challenge = self.staff("POST", path + "/activation-challenge", json={}).json()
        return self.staff("POST", path + "/activate", json=dongle.sign_session(challenge))

    def provision(self, household_no: str) -> TestDongle:
        dongle = self.manufacturer.new_dongle()
        dongle.generate_key()
        assert self.register(dongle, household_no).status_code == 201
        assert self.activate(dongle).status_code == 200
        return dongle

    def open_session(self, dongle: TestDongle) -> requests.Response:
        challenge = self.call(
            "POST", "/api/v1/device-sessions/challenge", json={"dongle_id": dongle.dongle_id}
        ).json()
        body = {"dongle_id": dongle.dongle_id, **dongle.sign_session(challenge)}
        return self.call("POST", "/api/v1/device-sessions", json=body)

    def session_token(self, dongle: TestDongle) -> str:
        response = self.open_session(dongle)
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def create_payment(
        self, token: str, bill: dict[str, Any], key: str | None = None
    ) -> requests.Response:
        return self.call(
            "POST",
            "/api/v1/payments",
            token,
            headers={"Idempotency-Key": key or str(uuid.uuid4())},
            json={"bill_id": bill["bill_id"], "amount_fen": bill["amount_fen"], "currency": "CNY"},
        )

    def authorize(self, payment_id: str, authorization: dict[str, Any]) -> requests.Response:
        return self.call("POST", f"/api/v1/payments/{payment_id}/authorize", json=authorization)

    def paying_household(self, months: int = 3) -> tuple[TestDongle, str, list[dict[str, Any]]]:
        """A household with an active dongle, an open session and unpaid bills."""
        household_no = self.household()
        self.bills(household_no, months)
        dongle = self.provision(household_no)
        token = self.session_token(dongle)
        bills = self.call("GET", "/api/v1/bills", token).json()["bills"]
        return dongle, token, bills
