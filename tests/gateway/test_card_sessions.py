"""Card sessions over real HTTP on SQLite and PostgreSQL: the test plays the box, driving the
emulator's virtual purchase card with its APDUs (read, ask the gateway, write, read back,
confirm), then inserts the card in the emulator's virtual card meter and sees the credit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from emulator.meters.card_meter import Outcome
from protocol.card import (
    SFI_PURCHASE,
    SW_NO_SESSION,
    SW_OK,
    SW_SECURITY,
    CardStatusError,
    IssuerFile,
    PurchaseRecord,
    check_response,
    get_challenge,
    read_binary,
    vending_master_key,
)
from tests.gateway.card_world import CardWorld, card_world, fresh_card
from tests.gateway.helpers import GatewayUnderTest


@pytest.fixture
def world(gw: GatewayUnderTest) -> CardWorld:
    return card_world(gw)


def _count(world: CardWorld) -> int:
    data = check_response(world.card.transmit(read_binary(SFI_PURCHASE)))
    return PurchaseRecord.parse(data).count


def test_a_purchase_is_written_confirmed_and_credited_by_the_meter(world: CardWorld) -> None:
    bought = world.buy(20000)
    assert bought["card_count"] == 1
    answer = world.box.write(world.card)
    assert answer["action"] == "write"
    assert (answer["purchase_id"], answer["count"]) == (bought["purchase_id"], 1)
    assert len(answer["apdus"]) == 2 and _count(world) == 1
    (issued,) = world.issues(bought["purchase_id"])
    assert (issued.count, issued.box) == (1, world.box.dongle.dongle_id)
    assert world.purchase(bought["purchase_id"])["fulfilment"] == "pending"
    assert world.notifications(bought["payment_id"]) == 0  # the utility waits for the credit

    confirmed = world.box.confirm(world.card)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"purchase_id": bought["purchase_id"], "fulfilment": "done"}
    assert world.purchase(bought["purchase_id"])["fulfilment"] == "done"
    assert world.notifications(bought["payment_id"]) == 1
    assert world.meter_row().card_count == 1

    inserted = world.meter.insert(world.card)
    assert (inserted.outcome, inserted.amount_fen) == (Outcome.CREDITED, 20000)
    assert world.meter.balance_fen == 20000


def test_every_session_logs_the_read_and_keeps_the_meters_write_back(world: CardWorld) -> None:
    world.buy(10000)
    world.box.write(world.card)
    assert world.box.confirm(world.card).status_code == 200
    world.meter.consume(5000)  # 5 kWh at 0.5603 yuan: ¥2.81 used
    world.meter.insert(world.card)
    answer = world.box.session(world.card).json()
    assert answer == {
        "action": "none",
        "reason": "No purchase is waiting for this card (it shows purchase 1).",
    }
    last = world.reads()[-1]
    assert (last.count, last.dongle_id) == (1, world.box.dongle.dongle_id)
    assert last.writeback is not None
    assert world.meter_row().last_balance_fen == world.meter.balance_fen == 10000 - 281


def test_a_card_already_showing_the_purchase_is_told_to_confirm(world: CardWorld) -> None:
    bought = world.buy()
    world.box.write(world.card)  # written; the box lost power before confirming
    answer = world.box.session(world.card).json()
    assert answer == {"action": "confirm", "purchase_id": bought["purchase_id"]}
    assert len(world.issues(bought["purchase_id"])) == 1  # no second block


def test_another_households_box_writes_the_card(world: CardWorld) -> None:
    """补写卡: the card, not the box, names the purchase."""
    bought = world.buy()
    shop = world.other_box()
    assert shop.write(world.card)["purchase_id"] == bought["purchase_id"]
    assert shop.confirm(world.card).json()["fulfilment"] == "done"
    (issued,) = world.issues(bought["purchase_id"])
    assert issued.box == shop.dongle.dongle_id
    assert world.meter.insert(world.card).amount_fen == 10000


def test_two_boxes_confirming_at_once_notify_the_utility_once(world: CardWorld) -> None:
    bought = world.buy()
    world.box.write(world.card)
    shop = world.other_box()
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda box: box.confirm(world.card), [world.box, shop] * 3))
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["fulfilment"] for a in answers} == {"done"}
    assert world.notifications(bought["payment_id"]) == 1
    assert world.row(bought["purchase_id"]).fulfilled_at is not None


def test_a_card_without_the_purchase_cannot_confirm_it(world: CardWorld) -> None:
    bought = world.buy()
    refused = world.box.confirm(world.card)  # not written yet: still count 0
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "card_mismatch"
    assert world.purchase(bought["purchase_id"])["fulfilment"] == "pending"
    assert world.notifications(bought["payment_id"]) == 0


def _forged_other_key(world: CardWorld) -> dict[str, str]:
    secret = bytes(32)  # not the gateway's vending secret
    other = fresh_card(world.meter_no, vending_master_key(secret, "SGCC-BJ"))
    return world.box.read(other)


def _forged_amount(world: CardWorld) -> dict[str, str]:
    files = world.box.read(world.card)
    record = PurchaseRecord.parse(bytes.fromhex(files["purchase"]))
    return files | {"purchase": replace(record, amount_fen=10**6).to_bytes().hex()}


def _forged_count(world: CardWorld) -> dict[str, str]:
    files = world.box.read(world.card)
    record = PurchaseRecord.parse(bytes.fromhex(files["purchase"]))
    return files | {"purchase": replace(record, count=record.count + 1).to_bytes().hex()}


def _forged_issuer(world: CardWorld) -> dict[str, str]:
    """Another serial in the issuer file: the card key it names does not make the card's MACs."""
    files = world.box.read(world.card)
    issuer = IssuerFile.parse(bytes.fromhex(files["issuer"]))
    other = replace(issuer, serial=bytes(8))
    return files | {"issuer": other.to_bytes().hex()}


@pytest.mark.parametrize(
    "forge", [_forged_other_key, _forged_amount, _forged_count, _forged_issuer]
)
def test_a_forged_card_is_refused_and_nothing_is_written(world: CardWorld, forge: object) -> None:
    bought = world.buy()
    files = forge(world)  # type: ignore[operator]
    challenge = check_response(world.card.transmit(get_challenge())).hex()
    for path, body in [
        ("/api/v1/cards/session", {"card": files, "challenge": challenge}),
        ("/api/v1/cards/confirm", {"card": files}),
    ]:
        refused = world.gw.call("POST", path, world.box.token, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "card_not_authentic"
        assert "service counter" in refused.json()["error"]["message"]
    assert world.issues(bought["purchase_id"]) == [] and world.reads() == []
    assert world.purchase(bought["purchase_id"])["fulfilment"] == "pending"


def test_a_block_replayed_after_its_session_is_useless_at_the_card(world: CardWorld) -> None:
    world.buy()
    stale = world.box.session(world.card).json()["apdus"]  # never run: the box was unplugged
    world.box.session(world.card)  # a new session: a new challenge, a new block
    # The first is MAC'ed for the old challenge (refused, and the session ends with it).
    for apdu, status in zip(stale, [SW_SECURITY, SW_NO_SESSION], strict=True):
        with pytest.raises(CardStatusError) as refused:
            check_response(world.card.transmit(bytes.fromhex(apdu)))
        assert refused.value.sw == status
    world.card.reset()  # card out and in: no session at all
    with pytest.raises(CardStatusError) as refused:
        check_response(world.card.transmit(bytes.fromhex(stale[1])))
    assert refused.value.sw == SW_NO_SESSION
    assert _count(world) == 0
    assert world.meter.insert(world.card).outcome == Outcome.NOTHING


def test_a_finished_purchases_block_cannot_be_written_again(world: CardWorld) -> None:
    world.buy()
    block = world.box.write(world.card)["apdus"]
    assert world.box.confirm(world.card).status_code == 200
    assert world.meter.insert(world.card).outcome == Outcome.CREDITED
    check_response(world.card.transmit(get_challenge()))
    answers = [world.card.transmit(bytes.fromhex(apdu)) for apdu in block]
    assert int.from_bytes(answers[0][-2:], "big") == SW_SECURITY
    assert int.from_bytes(answers[-1][-2:], "big") != SW_OK
    assert world.meter.insert(world.card).outcome == Outcome.NOTHING
    assert world.meter.balance_fen == 10000


def test_a_card_the_meter_has_not_read_cannot_take_the_next_purchase(world: CardWorld) -> None:
    world.buy()
    world.box.write(world.card)
    assert world.box.confirm(world.card).status_code == 200
    refused = world.gw.call(  # purchase 1 is on the card, not yet in the meter
        "POST",
        "/api/v1/purchases",
        world.box.token,
        headers={"Idempotency-Key": "second"},
        json={
            "meter_id": world.meter_id,
            "amount_fen": 10000,
            "currency": "CNY",
            "card": world.box.read(world.card),
        },
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "card_not_ready"
    assert "insert the card in the meter first" in refused.json()["error"]["message"]
    world.meter.insert(world.card)
    second = world.buy()
    assert second["card_count"] == 2
    assert world.box.write(world.card)["count"] == 2
    assert world.box.confirm(world.card).status_code == 200
    assert world.meter.insert(world.card).amount_fen == 10000
    assert world.meter.balance_fen == 20000


def test_an_old_read_of_the_card_cannot_take_a_purchase(world: CardWorld) -> None:
    """A copy of the card from before purchase 1: writing purchase 1 again would be lost."""
    old = world.box.read(world.card)
    world.buy()
    world.box.write(world.card)
    assert world.box.confirm(world.card).status_code == 200
    world.meter.insert(world.card)
    refused = world.gw.call(
        "POST",
        "/api/v1/purchases",
        world.box.token,
        headers={"Idempotency-Key": "old"},
        json={"meter_id": world.meter_id, "amount_fen": 10000, "currency": "CNY", "card": old},
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "card_not_ready"
    assert "latest card" in refused.json()["error"]["message"]


def test_another_meters_card_is_refused_before_the_pin(world: CardWorld) -> None:
    stranger = fresh_card("999999999999", world.master)
    refused = world.gw.call(
        "POST",
        "/api/v1/purchases",
        world.box.token,
        headers={"Idempotency-Key": "stranger"},
        json={
            "meter_id": world.meter_id,
            "amount_fen": 10000,
            "currency": "CNY",
            "card": world.box.read(stranger),
        },
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "card_wrong_meter"
    asked = world.box.session(stranger)
    assert asked.status_code == 422
    assert asked.json()["error"]["code"] == "card_unknown_meter"


@pytest.mark.parametrize(
    "body",
    [
        {"challenge": "00" * 8},
        {"card": {"issuer": "00", "purchase": "00", "writeback": "00"}, "challenge": "00" * 8},
        {"card": {"issuer": "zz" * 32, "purchase": "00" * 32, "writeback": "00" * 32}},
    ],
)
def test_malformed_requests_are_refused_with_a_clear_error(
    world: CardWorld, body: dict[str, object]
) -> None:
    for path in ("/api/v1/cards/session", "/api/v1/cards/confirm"):
        refused = world.gw.call("POST", path, world.box.token, json=body)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "invalid_request"
    assert world.reads() == []


def test_card_sessions_need_a_device_session(world: CardWorld) -> None:
    challenge = check_response(world.card.transmit(get_challenge())).hex()
    body = {"card": world.box.read(world.card), "challenge": challenge}
    assert world.gw.call("POST", "/api/v1/cards/session", json=body).status_code == 401
