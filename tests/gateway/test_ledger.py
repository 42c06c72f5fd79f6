"""The ledger against a real database (both backends): posting rules, idempotency, and that
random sequences of top-ups, payments, refunds and settlements keep every invariant while
`check` finds each kind of corruption planted around the ledger's code."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gateway.db.engine import make_engine
from gateway.db.migrate import upgrade
from gateway.errors import Conflict
from gateway.funding.refunds import refund_payment
from gateway.funding.wallet import credit_wallet
from gateway.ledger import (
    InsufficientFunds,
    InvalidPosting,
    Leg,
    PostingConflict,
    accounts,
    balance,
    check,
    post,
)
from tests.gateway.conftest import fresh_database_url
from tests.gateway.ledger_world import (
    BILLER,
    LedgerHousehold,
    household_with_bills,
    new_payment,
    plant_transfer,
    rolled_back,
    succeed,
)

PAYABLE = accounts.payable(BILLER)
SLOW = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def engine(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url(request, backend, tmp_path), pool_size=2)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_post_moves_money_and_a_retry_posts_nothing(engine: Engine) -> None:
    with rolled_back(engine) as s:
        legs = [Leg(accounts.TOPUPS, accounts.wallet("1"), 500)]
        first = post(s, kind="topup", ref="R1", currency="CNY", legs=legs)
        again = post(s, kind="topup", ref="R1", currency="CNY", legs=legs)
        assert first == again
        assert balance(s, accounts.wallet("1")) == 500
        assert balance(s, accounts.TOPUPS) == -500
        with pytest.raises(PostingConflict):
            post(
                s,
                kind="topup",
                ref="R1",
                currency="CNY",
                legs=[Leg(legs[0].debit, legs[0].credit, 9)],
            )


def test_a_wallet_never_goes_below_zero(engine: Engine) -> None:
    with rolled_back(engine) as s:
        post(
            s, kind="topup", ref="R1", currency="CNY", legs=[Leg(accounts.TOPUPS, "wallet:1", 1200)]
        )
        with pytest.raises(InsufficientFunds) as refused:
            post(s, kind="payment", ref="P1", currency="CNY", legs=[Leg("wallet:1", PAYABLE, 4560)])
        assert (refused.value.account, refused.value.balance, refused.value.needed) == (
            "wallet:1",
            1200,
            4560,
        )
        assert balance(s, "wallet:1") == 1200 and check(s) == []


@pytest.mark.parametrize(
    "legs",
    [[], [Leg("wallet:1", PAYABLE, 0)], [Leg("wallet:1", PAYABLE, -5)], [Leg("wallet:1", "wallet:1", 5)],
     [Leg("wallet:1", PAYABLE, True)], [Leg("nocolon", PAYABLE, 5)]],
)  # fmt: skip
def test_malformed_postings_are_refused_before_the_database(
    engine: Engine, legs: list[Leg]
) -> None:
    with rolled_back(engine) as s:
        with pytest.raises(InvalidPosting):
            post(s, kind="payment", ref="P1", currency="CNY", legs=legs)
        assert s.execute(text("SELECT COUNT(*) FROM ledger_transfers")).scalar() == 0


# One step of a household's money: (operation, argument).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.integers(1, 30_000)),
        st.tuples(st.just("create"), st.integers(0, 3)),
        st.tuples(st.just("authorize"), st.integers(0, 7)),
        st.tuples(st.just("refund"), st.integers(0, 7)),
        st.tuples(st.just("settle"), st.integers(1, 30_000)),
    ),
    max_size=25,
)
# Bills 0-3 for the steps; bill 4 keeps a payment the steps never touch.
AMOUNTS = st.lists(st.integers(1, 20_000), min_size=5, max_size=5)


class Model:
    """What the balances must be, kept by hand next to the real ledger."""

    def __init__(self) -> None:
        self.wallet = 0
        self.payable = 0
        self.payments: list[tuple[str, int, int]] = []  # (id, bill index, amount)
        self.status: dict[str, str] = {}
        self.paid_bills: set[int] = set()


def _attempt(s: Session, work: Callable[[], object], refused: str | None = None) -> object:
    """Run one step in a savepoint; a refused step leaves nothing behind, as its own
    transaction would."""
    if refused is None:
        with s.begin_nested():
            return work()
    with pytest.raises(Conflict) as error, s.begin_nested():
        work()
    assert error.value.code == refused
    return None


def _run_step(
    s: Session, model: Model, home: LedgerHousehold, step: tuple[str, int], n: int
) -> None:
    op, arg = step
    if op == "topup":
        ref = f"T{n}-{uuid.uuid4().hex[:8]}"
        _attempt(s, lambda: credit_wallet(s, "test", home.number, arg, "CNY", ref, "shop"))
        model.wallet += arg
    elif op == "create":
        amount = home.amounts[arg]
        if arg in model.paid_bills:
            _attempt(s, lambda: new_payment(s, home, arg), "bill_already_paid")
        elif model.wallet < amount:
            _attempt(s, lambda: new_payment(s, home, arg), "insufficient_funds")
        else:
            pid = str(_attempt(s, lambda: new_payment(s, home, arg)))
            model.payments.append((pid, arg, amount))
            model.status[pid] = "requires_authorization"
    elif op == "authorize" and model.payments:
        pid, bill, amount = model.payments[arg % len(model.payments)]
        if model.status[pid] != "requires_authorization" or bill in model.paid_bills:
            return
        if model.wallet < amount:
            _attempt(s, lambda: succeed(s, pid), "insufficient_funds")
            return
        _attempt(s, lambda: succeed(s, pid))
        model.wallet -= amount
        model.payable += amount
        model.status[pid] = "succeeded"
        model.paid_bills.add(bill)
    elif op == "refund" and model.payments:
        pid, _bill, amount = model.payments[arg % len(model.payments)]
        refund = lambda: refund_payment(s, "test", pid, "household paid twice")  # noqa: E731
        if model.status[pid] == "refunded":
            _attempt(s, refund, "payment_refunded")
        elif model.status[pid] != "succeeded":
            _attempt(s, refund, "payment_not_refundable")
        else:
            _attempt(s, refund)
            model.wallet += amount
            model.payable -= amount
            model.status[pid] = "refunded"
    elif op == "settle" and model.payable > 0:
        amount = min(arg, model.payable)
        legs = [Leg(PAYABLE, accounts.SETTLEMENTS, amount)]
        _attempt(s, lambda: post(s, kind="settlement", ref=f"S{n}", currency="CNY", legs=legs))
        model.payable -= amount


@SLOW
@given(amounts=AMOUNTS, steps=STEPS)
def test_random_money_keeps_every_invariant(
    engine: Engine, amounts: list[int], steps: list[tuple[str, int]]
) -> None:
    with rolled_back(engine) as s:
        home = household_with_bills(s, amounts)
        model = Model()
        for n, step in enumerate(steps):
            _run_step(s, model, home, step, n)
            assert balance(s, home.wallet) == model.wallet >= 0
            assert balance(s, PAYABLE) == model.payable
        assert check(s) == []


def _plant_edit(s: Session, home: LedgerHousehold, paid: str, pending: str) -> None:
    s.execute(
        text("UPDATE ledger_transfers SET amount_fen = amount_fen + 1 WHERE ref = :r"), {"r": paid}
    )


def _plant_negative_wallet(s: Session, home: LedgerHousehold, paid: str, pending: str) -> None:
    plant_transfer(s, "topup", "planted", home.wallet, accounts.TOPUPS, balance(s, home.wallet) + 1)


def _plant_unbalanced_payable(s: Session, home: LedgerHousehold, paid: str, pending: str) -> None:
    plant_transfer(s, "adjust", "planted", accounts.TOPUPS, PAYABLE, 7)


def _plant_wallet_figure(s: Session, home: LedgerHousehold, paid: str, pending: str) -> None:
    s.execute(
        text("UPDATE ledger_accounts SET balance_fen = balance_fen + 100 WHERE code = :c"),
        {"c": home.wallet},
    )


def _plant_succeeded_without_posting(
    s: Session, home: LedgerHousehold, paid: str, pending: str
) -> None:
    s.execute(text("UPDATE payments SET status = 'succeeded' WHERE id = :id"), {"id": pending})


CORRUPTIONS = {
    "was changed after it was posted": _plant_edit,
    "went below zero": _plant_negative_wallet,
    f"{PAYABLE} holds": _plant_unbalanced_payable,
    "is succeeded": _plant_succeeded_without_posting,
    "records a balance of": _plant_wallet_figure,
}


@SLOW
@given(amounts=AMOUNTS, steps=STEPS, found=st.sampled_from(sorted(CORRUPTIONS)))
def test_check_finds_each_planted_corruption(
    engine: Engine, amounts: list[int], steps: list[tuple[str, int]], found: str
) -> None:
    with rolled_back(engine) as s:
        home = household_with_bills(s, amounts)
        model = Model()
        # A funded, paid bill first, so every kind of corruption has something to damage.
        credit_wallet(s, "test", home.number, sum(amounts), "CNY", "first", "shop")
        model.wallet = sum(amounts)
        pid = new_payment(s, home, 0)
        succeed(s, pid)
        pending = new_payment(s, home, 4)
        model.wallet -= amounts[0]
        model.payable += amounts[0]
        model.payments.append((pid, 0, amounts[0]))
        model.status[pid] = "succeeded"
        model.paid_bills.add(0)
        for n, step in enumerate(steps):
            _run_step(s, model, home, step, n)
        assert check(s) == []
        CORRUPTIONS[found](s, home, pid, pending)
        problems = check(s)
        assert any(found in p for p in problems), problems


def _shop_sale(s: Session, commission_fen: int) -> tuple[LedgerHousehold, str]:
    """A shop (its float funded) whose sale took its money with ``commission_fen`` fixed on it."""
    shop = household_with_bills(s, [10000])
    s.execute(
        text("UPDATE households SET kind = 'shop', commission_bp = 50 WHERE id = :id"),
        {"id": shop.id},
    )
    credit_wallet(s, "test", shop.number, 10000, "CNY", "float", "shop")
    pid = new_payment(s, shop, 0)
    s.execute(
        text("UPDATE payments SET commission_fen = :c WHERE id = :id"),
        {"c": commission_fen, "id": pid},
    )
    s.expire_all()
    succeed(s, pid)
    return shop, pid


def test_a_shop_sale_carves_its_commission_out_of_the_payable_and_a_refund_returns_it(
    engine: Engine,
) -> None:
    with rolled_back(engine) as s:
        shop, pid = _shop_sale(s, 50)
        commission = accounts.commission(shop.number)
        assert (balance(s, PAYABLE), balance(s, commission)) == (9950, 50)
        assert check(s) == []
        refund_payment(s, "test", pid, "customer changed their mind")
        assert (balance(s, PAYABLE), balance(s, commission)) == (0, 0)
        assert balance(s, shop.wallet) == 10000
        assert check(s) == []


def _plant_commission_on_a_home_payment(s: Session, shop: str, pid: str, home_pid: str) -> None:
    plant_transfer(s, "commission", home_pid, PAYABLE, accounts.commission(shop), 1)


def _plant_commission_changed_on_the_payment(
    s: Session, shop: str, pid: str, home_pid: str
) -> None:
    s.execute(text("UPDATE payments SET commission_fen = 51 WHERE id = :id"), {"id": pid})


def _plant_commission_kept_after_refund(s: Session, shop: str, pid: str, home_pid: str) -> None:
    s.execute(text("DELETE FROM ledger_transfers WHERE kind = 'commission_back'"))


@pytest.mark.parametrize(
    "plant",
    [
        _plant_commission_on_a_home_payment,
        _plant_commission_changed_on_the_payment,
        _plant_commission_kept_after_refund,
    ],
)
def test_check_finds_a_wrong_commission(engine: Engine, plant: Callable[..., None]) -> None:
    with rolled_back(engine) as s:
        shop, pid = _shop_sale(s, 50)
        home = household_with_bills(s, [700])
        credit_wallet(s, "test", home.number, 700, "CNY", "home", "shop")
        home_pid = new_payment(s, home, 0)
        succeed(s, home_pid)
        if plant is _plant_commission_kept_after_refund:
            refund_payment(s, "test", pid, "customer changed their mind")
        assert check(s) == []
        plant(s, shop.number, pid, home_pid)
        problems = check(s)
        assert any("commission" in p and PAYABLE in p for p in problems), problems
        wronged = home_pid if plant is _plant_commission_on_a_home_payment else pid
        assert any(f"payment {wronged}" in p and "commission" in p for p in problems), problems
