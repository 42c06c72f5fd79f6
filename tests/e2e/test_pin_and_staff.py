"""The household and the telecom's staff together: a blocked PIN unblocked with the staff tool,
and a factory-fresh dongle provisioned by staff that then pays. Own box: these tests change
which dongle is plugged in and its PIN."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.automation.client import AutomationClient
from protocol.errors import PinPolicyError
from protocol.pin import check_pin
from tests.e2e.flows import pay, start_payment, type_pin
from tests.e2e.stack import Ledger, RunningStack, start_stack, unpaid_account, wait_until


@pytest.fixture(scope="module")
def staff_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir: Path = tmp_path_factory.mktemp("e2e-staff") / "state"
    args = ("--seed", "12", "--households", "2", "--factory-dongles", "1")
    with start_stack(state_dir, args=args) as stack:
        yield stack


def _hand_back_to_household(client: AutomationClient, serial: str) -> None:
    """Staff worked on the dongle at the shop; the household plugs it back into its box."""
    client.unplug(serial)
    # A person takes a moment to plug it back: the box shows "insert the dongle" first.
    wait_until(lambda: client.screen()["state"] == "no_dongle", 15, "the no-dongle screen")
    client.plug(serial)
    # The box continues by itself once the dongle is back (pressing Home before that would
    # leave the screen the box is about to replace).
    client.wait(screen="home", text="支付盾已就绪", timeout=20)


def _wrong_pin(right: str) -> str:
    for candidate in ("135790", "246802", "975319", "864208"):
        try:
            check_pin(candidate)
        except PinPolicyError:
            continue
        if candidate != right:
            return candidate
    raise AssertionError("no wrong PIN candidate passes the policy")


def test_wrong_pin_three_times_blocks_then_staff_unblocks_and_it_pays(
    staff_stack: RunningStack,
) -> None:
    stack, client = staff_stack, staff_stack.client
    before = Ledger.read(stack)
    account = unpaid_account(stack)
    wrong = _wrong_pin(stack.pin)
    start_payment(client, account)
    for tries_left in (2, 1):
        type_pin(client, wrong)
        client.press("ok")
        client.wait(text=f"还可以试 {tries_left} 次", timeout=15)
    type_pin(client, wrong)
    client.press("ok")
    client.wait(text="支付盾已锁定", timeout=15)
    assert Ledger.read(stack).newly_paid_since(before) == set()

    serial = stack.where["demo"]["dongle_serial"]
    puk = stack.where["demo"]["puk"]
    done = stack.staff(("pin", "unblock"), "--serial", serial, stdin=f"{puk}\n{stack.pin}\n")
    assert done.returncode == 0, done.stdout + done.stderr

    _hand_back_to_household(client, serial)
    pay(client, account, stack.pin)
    assert len(Ledger.read(stack).newly_paid_since(before)) == 1


def test_staff_provisions_a_factory_fresh_dongle_and_it_pays(staff_stack: RunningStack) -> None:
    stack, client = staff_stack, staff_stack.client
    (fresh,) = stack.where["factory_dongles"]
    household = next(
        h for h in stack.where["households"] if h != stack.where["demo"]["household_no"]
    )
    new_pin = _wrong_pin(stack.pin)
    client.unplug()
    wait_until(lambda: client.screen()["state"] == "no_dongle", 15, "the no-dongle screen")
    client.plug(fresh)  # at the shop: staff provision it on the box's daemon
    done = stack.staff(
        ("provision",), "--account", household, "--serial", fresh, "--pin", new_pin, "--wait", "10"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["puk"]

    before = Ledger.read(stack)
    account = unpaid_account(stack, household)
    _hand_back_to_household(client, fresh)
    wait_until(
        lambda: f"account:{account}" in client.screen()["focusables"],
        20,
        f"the new household's account {account}",
        show=client.screen,
    )
    pay(client, account, new_pin)
    (bill,) = Ledger.read(stack).newly_paid_since(before)
    with stack.db() as db:
        (dongle,) = db.execute(
            "SELECT dongle_id FROM payments WHERE bill_id = ?"
            " AND status IN ('succeeded', 'credited')",
            (bill,),
        ).fetchone()
    assert dongle == fresh
