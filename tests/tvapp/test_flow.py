"""The payment flow of the app's service layer against the real gateway, daemon and dongle,
without the UI: journaling, resubmission after a restart, never signing twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.display import display_hash
from tests.fixtures.dongles import TEST_PIN
from tests.tvapp.netcut import NetworkCut
from tests.tvapp.world import SERVICE_ACCOUNT_NO, World
from tvapp.config import TvConfig
from tvapp.i18n import translations
from tvapp.services.container import Services
from tvapp.services.payments import PaymentPending, PaymentRefused, PreparedPayment
from tvapp.services.records import Bill
from tvapp.ui.confirmation import confirmation_for


def _services(world: World, network: NetworkCut, state: Path) -> Services:
    config = TvConfig(
        gateway_url=network.url, daemon_socket=str(world.daemon_socket), state_dir=str(state)
    )
    return Services.build(config)


@pytest.fixture(scope="module")
def water_bills(
    world: World, network: NetworkCut, tmp_path_factory: pytest.TempPathFactory
) -> list[Bill]:
    services = _services(world, network, tmp_path_factory.mktemp("bind"))
    account = services.session.call(
        lambda gw: gw.bind_account("water", SERVICE_ACCOUNT_NO, holder_name=world.household["name"])
    )
    bills = services.session.call(lambda gw: gw.bills(account.account_id))
    services.close()
    return [b for b in bills if b.status == "unpaid"]


@pytest.fixture
def services(world: World, network: NetworkCut, tmp_path: Path) -> Iterator[Services]:
    built = _services(world, network, tmp_path)
    yield built
    built.close()


def _shown(prepared: PreparedPayment) -> str:
    """The confirm screen's text for the prepared bill, in English."""
    return confirmation_for(prepared.bill, translations("en").gettext).text


def _counter(services: Services) -> int:
    return services.dongle.client.info().counter


def test_preparing_a_bill_twice_reuses_the_same_payment(
    services: Services, water_bills: list[Bill]
) -> None:
    bill = water_bills[0]
    first = services.payments.prepare(bill)
    again = services.payments.prepare(bill)
    assert (again.local_id, again.payment_id) == (first.local_id, first.payment_id)
    assert len(services.journal.entries()) == 1


def test_a_signed_payment_is_resubmitted_at_the_next_start_without_signing_again(
    world: World, network: NetworkCut, tmp_path: Path, water_bills: list[Bill]
) -> None:
    before = _services(world, network, tmp_path)
    prepared = before.payments.prepare(water_bills[1])
    network.cut()
    try:
        with pytest.raises(PaymentPending, match="saved on this box"):
            before.payments.pay(prepared, TEST_PIN, _shown(prepared), lambda _step: None)
    finally:
        network.restore()
    counter = _counter(before)
    before.close()

    after = _services(world, network, tmp_path)  # the box restarted
    receipts = after.payments.resubmit()
    assert [r.payment_id for r in receipts] == [prepared.payment_id]
    assert after.journal.get(prepared.local_id).state == "succeeded"
    assert _counter(after) == counter  # resubmitted, not signed a second time
    after.close()


def test_paying_again_after_a_lost_answer_sends_the_journaled_signature(
    services: Services, network: NetworkCut, water_bills: list[Bill]
) -> None:
    prepared = services.payments.prepare(water_bills[2])
    network.cut()
    try:
        with pytest.raises(PaymentPending):
            services.payments.pay(prepared, TEST_PIN, _shown(prepared), lambda _step: None)
    finally:
        network.restore()
    counter = _counter(services)
    again = services.payments.prepare(water_bills[2])
    assert again.payment_id == prepared.payment_id and not again.needs_pin
    steps: list[str] = []
    receipt = services.payments.pay(again, "", _shown(again), steps.append)
    assert receipt.payment_id == prepared.payment_id
    assert steps == ["sending", "confirming"] and _counter(services) == counter


def test_signing_interrupted_then_retried_in_another_language_starts_a_new_payment(
    services: Services, water_bills: list[Bill]
) -> None:
    bill = water_bills[3]
    prepared = services.payments.prepare(bill)
    entry = services.journal.get(prepared.local_id)
    assert entry.sign_fields is not None
    # The box lost power right after the dongle signed the Chinese screen's text: the signature
    # never reached the journal. The household comes back with the box in English.
    services.payments.journal.record_signing(prepared.local_id)
    chinese = confirmation_for(bill, translations("zh_CN").gettext).text
    services.dongle.sign_payment(
        {**entry.sign_fields, "display_hash": display_hash(chinese)}, TEST_PIN
    )
    with pytest.raises(PaymentRefused) as refused:
        services.payments.pay(prepared, TEST_PIN, _shown(prepared), lambda _step: None)
    assert refused.value.code == "signing_interrupted"
    assert services.journal.get(prepared.local_id).state == "abandoned"

    again = services.payments.prepare(bill)
    assert again.payment_id != prepared.payment_id and again.needs_pin
    receipt = services.payments.pay(again, TEST_PIN, _shown(again), lambda _step: None)
    assert receipt.payment_id == again.payment_id and receipt.amount_fen == bill.amount_fen
