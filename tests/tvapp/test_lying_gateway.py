"""A gateway that asks the dongle to sign something other than the bill shown gets nothing.

The real gateway, daemon and dongle, with a relay in front of the gateway that rewrites the
fields of each payment it creates (tests/tvapp/lying_gateway.py). The app must refuse before the
PIN is asked: the prepared payment never reaches the confirm screen, the journal entry is closed
as refused, and the dongle's counter and PIN tries stay where they were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.dongles import TEST_PIN
from tests.tvapp.lying_gateway import LyingGateway, Tamper
from tests.tvapp.world import World
from tvapp.config import TvConfig
from tvapp.i18n import translations
from tvapp.services.container import Services
from tvapp.services.records import Bill
from tvapp.services.sign_check import DetailsMismatch
from tvapp.ui.confirmation import confirmation_for

# Each lie, and the signed field the app names when it refuses it.
LIES: dict[str, tuple[str, Tamper]] = {
    "ten times the amount": ("amount_fen", lambda f: {**f, "amount_fen": f["amount_fen"] * 10}),
    # Another account's number, masked as the screen masks: only its last digits differ.
    "another account": (
        "account",
        lambda f: {
            **f,
            "account": f["account"][:-4] + ("0000" if f["account"][-4:] != "0000" else "1111"),
        },
    ),
    "another bill": ("bill_ref", lambda f: {**f, "bill_ref": f["bill_ref"] + "-2"}),
    "another currency": ("currency", lambda f: {**f, "currency": "USD"}),
}


@pytest.fixture(scope="module")
def liar(world: World) -> Iterator[LyingGateway]:
    relay = LyingGateway(world.gateway_url)
    yield relay
    relay.close()


@pytest.fixture
def services(world: World, liar: LyingGateway, tmp_path: Path) -> Iterator[Services]:
    liar.tamper = lambda fields: fields
    config = TvConfig(
        gateway_url=liar.url, daemon_socket=str(world.daemon_socket), state_dir=str(tmp_path)
    )
    built = Services.build(config)
    yield built
    built.close()


def _unpaid_bill(services: Services) -> Bill:
    """An unpaid bill of the household's own (demo) accounts, as the bill list shows it."""
    for account in services.session.call(lambda gw: gw.accounts()):
        bills = services.session.call(lambda gw, a=account: gw.bills(a.account_id))
        unpaid = [b for b in bills if b.status == "unpaid"]
        if unpaid:
            return unpaid[-1]
    raise AssertionError("the demo household has no unpaid bill left")


def _dongle(services: Services) -> tuple[Any, Any]:
    info = services.dongle.client.info()
    return info.counter, info.pin_retries


def _text(bill: Bill) -> str:
    return confirmation_for(bill, translations("en").gettext).text


@pytest.mark.parametrize("lie", list(LIES))
def test_a_lying_gateway_is_refused_before_the_pin_and_nothing_is_signed(
    services: Services, liar: LyingGateway, lie: str
) -> None:
    bill = _unpaid_bill(services)
    field, liar.tamper = LIES[lie]
    before = _dongle(services)
    with pytest.raises(DetailsMismatch, match="do not match the bill shown") as refused:
        services.payments.prepare(bill)  # what hands the confirm screen its payment
    assert refused.value.field == field
    [entry] = services.journal.entries()
    assert entry.state == "refused" and entry.authorization is None
    assert "do not match the bill shown" in (entry.reason or "")
    assert _dongle(services) == before  # no signature, and no PIN was tried


def test_a_text_that_does_not_state_the_amount_is_not_signed(services: Services) -> None:
    bill = _unpaid_bill(services)
    prepared = services.payments.prepare(bill)
    before = _dongle(services)
    other = _text(replace(bill, amount_fen=bill.amount_fen * 10))  # not what was prepared
    with pytest.raises(DetailsMismatch, match="confirmation text"):
        services.payments.pay(prepared, TEST_PIN, other, lambda _step: None)
    assert services.journal.get(prepared.local_id).state == "refused"
    assert _dongle(services) == before


def test_an_honest_payment_signs_the_text_shown_and_the_receipt_repeats_its_hash(
    services: Services,
) -> None:
    bill = _unpaid_bill(services)
    prepared = services.payments.prepare(bill)
    text = _text(bill)
    receipt = services.payments.pay(prepared, TEST_PIN, text, lambda _step: None)
    assert receipt.display_hash == hashlib.sha256(text.encode()).hexdigest()
    journaled = services.journal.get(prepared.local_id).authorization
    assert journaled is not None and journaled["display_text"] == text
