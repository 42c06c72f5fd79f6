"""Signed authorizations delivered in any order: each counter is accepted once, within the replay
window below the highest counter seen; older ones are refused with ``counter_too_old``.

The dongle is the real emulator firmware (tests.gateway.firmware), the gateway a real server on
SQLite or PostgreSQL, every call real HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.db.models import Dongle, Payment
from gateway.replay import REPLAY_WINDOW
from tests.gateway.conftest import make_context, serve_in_thread
from tests.gateway.firmware import FirmwareDongle, factory, provision_for
from tests.gateway.helpers import GatewayUnderTest

Signed = tuple[str, dict[str, Any]]  # (payment id, the authorize body the dongle signed)


@dataclass
class Payer:
    """A household whose real dongle signs payments for fresh bills."""

    gw: GatewayUnderTest
    dongle: FirmwareDongle
    household_no: str
    token: str
    used: set[str] = field(default_factory=set)

    def fresh_bills(self, count: int) -> list[dict[str, Any]]:
        while True:
            unpaid = self.gw.call("GET", "/api/v1/bills", self.token).json()["bills"]
            fresh = [bill for bill in unpaid if bill["bill_id"] not in self.used]
            if len(fresh) >= count:
                break
            self.gw.bills(self.household_no, 12)
        self.used.update(bill["bill_id"] for bill in fresh[:count])
        return fresh[:count]

    def sign(self, bill: dict[str, Any]) -> Signed:
        created = self.gw.create_payment(self.token, bill)
        assert created.status_code == 201, created.text
        body = created.json()
        return body["payment_id"], self.dongle.sign_payment(body["sign_fields"])

    def sign_batch(self, count: int) -> list[Signed]:
        """``count`` payments for distinct bills, signed in this order (counters ascending)."""
        return [self.sign(bill) for bill in self.fresh_bills(count)]

    def deliver(self, signed: Signed) -> Any:
        return self.gw.authorize(*signed)

    def accepted_counters(self) -> list[int]:
        dongle_id = self.dongle.dongle_id
        return self.gw.ctx.db.read(
            lambda s: sorted(
                s.scalars(select(Payment.counter).where(Payment.dongle_id == dongle_id))
            )
        )

    def highest(self) -> int:
        dongle_id = self.dongle.dongle_id
        return self.gw.ctx.db.read(lambda s: s.get(Dongle, dongle_id).last_counter)


@contextmanager
def _running_payer(request: pytest.FixtureRequest, backend: str, tmp: Path) -> Iterator[Payer]:
    with factory(tmp / "dongles", 1) as (manufacturer, links):
        (tmp / "gateway").mkdir()
        ctx = make_context(request, backend, tmp / "gateway", manufacturer)
        url, server, thread = serve_in_thread(ctx)
        try:
            gw = GatewayUnderTest.setup(url, ctx, manufacturer)
            household_no = gw.household()
            gw.bills(household_no, 12)
            dongle = provision_for(gw, links[0], household_no)
            yield Payer(gw, dongle, household_no, gw.session_token(dongle))  # type: ignore[arg-type]
        finally:
            server.should_exit = True
            thread.join(10)
            ctx.db.engine.dispose()


@pytest.fixture
def payer(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Payer]:
    with _running_payer(request, backend, tmp_path) as running:
        yield running


@pytest.fixture
def sqlite_payer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Payer]:
    with _running_payer(request, "sqlite", tmp_path) as running:
        yield running


def _deliver_in_order(
    payer: Payer, batch: list[Signed], order: tuple[int, ...], pending_id: str
) -> None:
    receipts = {}
    for index in order:
        answer = payer.deliver(batch[index])
        assert answer.status_code == 200, (order, index, answer.text)
        receipts[index] = answer.json()["receipt"]["receipt_no"]
    for index, signed in enumerate(batch):
        again = payer.deliver(signed)  # the box resending after a lost answer
        assert again.status_code == 200 and again.json()["receipt"]["receipt_no"] == receipts[index]
        elsewhere = payer.gw.authorize(pending_id, signed[1])  # replayed on another payment
        assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (
            401,
            "signature_invalid",
        )


def test_four_payments_succeed_once_in_each_of_the_24_delivery_orders(
    sqlite_payer: Payer,
) -> None:
    counters: list[int] = []
    pending = sqlite_payer.gw.create_payment(sqlite_payer.token, sqlite_payer.fresh_bills(1)[0])
    for order in itertools.permutations(range(4)):
        batch = sqlite_payer.sign_batch(4)
        _deliver_in_order(sqlite_payer, batch, order, pending.json()["payment_id"])
        counters += [auth["counter"] for _, auth in batch]
    assert sqlite_payer.accepted_counters() == sorted(counters)
    assert len(set(counters)) == 24 * 4
    assert sqlite_payer.highest() == max(counters)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), count=st.integers(min_value=5, max_value=12))
def test_any_delivery_order_with_resends_records_each_payment_once(
    sqlite_payer: Payer, data: st.DataObject, count: int
) -> None:
    batch = sqlite_payer.sign_batch(count)
    order = data.draw(st.permutations(range(count)), label="order")
    resends = data.draw(st.lists(st.sampled_from(range(count)), max_size=count), label="resends")
    before = len(sqlite_payer.accepted_counters())
    receipts: dict[int, str] = {}
    for index in [*order, *resends]:
        answer = sqlite_payer.deliver(batch[index])
        assert answer.status_code == 200, answer.text
        receipt = answer.json()["receipt"]["receipt_no"]
        assert receipts.setdefault(index, receipt) == receipt
    assert len(sqlite_payer.accepted_counters()) == before + count


def test_a_counter_spent_inside_the_window_is_refused_for_another_payment(
    gw: GatewayUnderTest,
) -> None:
    # A cloned key could sign a second payment with a counter already spent; the real dongle
    # never does, so this dongle is the cryptographic double that can be told to.
    dongle, token, bills = gw.paying_household(months=3)
    created = [gw.create_payment(token, bill).json() for bill in bills]
    first = dongle.sign_payment(created[0]["sign_fields"])
    dongle.counter += 5
    assert (
        gw.authorize(
            created[1]["payment_id"], dongle.sign_payment(created[1]["sign_fields"])
        ).status_code
        == 200
    )
    assert gw.authorize(created[0]["payment_id"], first).status_code == 200
    dongle.counter = first["counter"] - 1
    clone = dongle.sign_payment(created[2]["sign_fields"])
    assert clone["counter"] == first["counter"]
    refused = gw.authorize(created[2]["payment_id"], clone)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "counter_replayed")


def test_a_counter_below_the_window_is_refused_and_the_edge_accepted(
    sqlite_payer: Payer,
) -> None:
    oldest, edge = sqlite_payer.sign_batch(2)
    spare = sqlite_payer.fresh_bills(1)[0]
    for _ in range(REPLAY_WINDOW - 2):
        sqlite_payer.sign(spare)  # payments signed and abandoned: their counters are spent
    (newest,) = sqlite_payer.sign_batch(1)
    assert newest[1]["counter"] - oldest[1]["counter"] == REPLAY_WINDOW
    assert sqlite_payer.deliver(newest).status_code == 200
    assert sqlite_payer.deliver(edge).status_code == 200
    refused = sqlite_payer.deliver(oldest)
    error = refused.json()["error"]
    assert (refused.status_code, error["code"]) == (409, "counter_too_old")
    assert "pay the bill again" in error["message"]
    assert sqlite_payer.accepted_counters() == sorted([edge[1]["counter"], newest[1]["counter"]])
    bill_id = sqlite_payer.gw.call(
        "GET", f"/api/v1/payments/{oldest[0]}", sqlite_payer.token
    ).json()["bill_id"]
    paid = sqlite_payer.gw.call("GET", "/api/v1/bills?status=unpaid", sqlite_payer.token).json()
    assert bill_id in {bill["bill_id"] for bill in paid["bills"]}  # unpaid, can be paid again


def test_concurrent_out_of_order_deliveries_each_record_once(payer: Payer) -> None:
    batch = payer.sign_batch(8)
    assert payer.deliver(batch[-1]).status_code == 200  # the newest arrives first
    deliveries = [*reversed(batch[:-1]), *batch[:-1]]  # every older one, twice, at once
    with ThreadPoolExecutor(len(deliveries)) as pool:
        answers = list(pool.map(payer.deliver, deliveries))
    assert [a.status_code for a in answers] == [200] * len(deliveries), [a.text for a in answers]
    receipts = {a.json()["payment_id"]: a.json()["receipt"]["receipt_no"] for a in answers}
    assert len(receipts) == 7
    assert payer.accepted_counters() == sorted(auth["counter"] for _, auth in batch)
    assert payer.highest() == batch[-1][1]["counter"]
