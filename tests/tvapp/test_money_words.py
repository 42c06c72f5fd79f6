"""Payment states, ways to pay and 查询到账 answers in the household's words (no app, no network):
every state the gateway documents has a word in every language, the confirmation text signs the
way to pay, and what the gateway sends about money is checked on the way in."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from gateway.api.schemas import PaymentState
from protocol.display import states_amount
from tvapp.i18n import LANGUAGES, translations
from tvapp.services.errors import MalformedAnswer
from tvapp.services.records import CreditingAnswer, FundingSource, PaymentRecord, Processing
from tvapp.ui.confirmation import confirmation_for
from tvapp.ui.statuses import crediting_line, status_line, status_word

WALLET = {
    "id": "fs_w",
    "kind": "wallet",
    "is_default": True,
    "balance_fen": 1200,
    "currency": "CNY",
}
CARD = {
    "id": "fs_c",
    "kind": "mandate",
    "is_default": False,
    "mandate": {
        "card_masked": "622202******1234",
        "per_payment_limit_fen": 50000,
        "monthly_limit_fen": 200000,
        "currency": "CNY",
        "status": "active",
    },
}


def _payment(**changes: Any) -> dict[str, Any]:
    return {
        "payment_id": "pay_1",
        "status": "credited",
        "biller": {"code": "B", "name": "供电"},
        "account_no_masked": "****1234",
        "period": "2026-05",
        "amount_fen": 4560,
        "currency": "CNY",
        "created_at": "2026-05-01T08:00:00Z",
        "receipt": None,
        "utility_ref": "UT20260501ab",
        **changes,
    }


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("state", [*typing.get_args(PaymentState), "pending", "refused"])
def test_every_payment_state_shows_a_word_never_its_id(language: str, state: str) -> None:
    line = status_line(translations(language).gettext, state)
    assert line and state not in line
    assert status_word(state).tone  # the colour repeats the word


def test_the_four_money_states_read_as_the_household_expects() -> None:
    zh = translations("zh_CN").gettext
    assert status_line(zh, "processing") == "处理中"
    assert "处理中" in status_line(zh, "succeeded")  # money taken, the utility not yet sure
    assert status_line(zh, "credited", "UT1") == "已到账 · 流水号 UT1"
    assert status_line(zh, "refunded", reason="account_closed") == "已退款 · 该缴费账户已销户"
    assert status_line(zh, "failed") == "未扣款"


def test_unknown_states_and_reason_codes_are_never_shown_raw() -> None:
    zh = translations("zh_CN").gettext
    assert "weird_state" not in status_line(zh, "weird_state")
    assert "duplicate_writeoff" not in status_line(zh, "refunded", reason="duplicate_writeoff")
    # A reason staff wrote in words is shown as written.
    assert status_line(zh, "refunded", reason="户主要求退款").endswith("户主要求退款")


def test_crediting_answers_in_words() -> None:
    zh = translations("zh_CN").gettext
    assert crediting_line(zh, "") == ""
    assert crediting_line(zh, "credited", "UT9").startswith("已到账")
    assert crediting_line(zh, "not_yet") == "尚未到账，处理中"
    assert crediting_line(zh, "utility_unreachable").startswith("缴费单位暂未响应")
    assert crediting_line(zh, "something_new") == crediting_line(zh, "error")


def test_the_signed_text_names_the_way_to_pay_and_still_states_one_amount(bill: Any) -> None:
    zh = translations("zh_CN").gettext
    wallet, card = FundingSource.from_json(WALLET), FundingSource.from_json(CARD)
    by_wallet = confirmation_for(bill, zh, wallet).text
    by_card = confirmation_for(bill, zh, card).text
    assert by_wallet.endswith("\n付款方式：钱包") and by_card.endswith(
        "\n付款方式：银行卡 622202******1234"
    )
    # The wallet's balance is on screen, not in what is signed: one amount, the bill's.
    assert states_amount(by_wallet, bill.amount_fen) and states_amount(by_card, bill.amount_fen)
    assert confirmation_for(bill, zh).text.count("\n") == 4  # no way to pay known: no line


@pytest.mark.parametrize(
    "bad",
    [
        {**WALLET, "balance_fen": -1},
        {**WALLET, "kind": "cash"},
        {**CARD, "mandate": {**CARD["mandate"], "card_masked": "6222021234561234"}},
        {**WALLET, "is_default": "yes"},
    ],
)
def test_a_malformed_funding_source_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(MalformedAnswer):
        FundingSource.from_json(bad)


def test_money_fields_of_payments_and_answers_are_checked() -> None:
    record = PaymentRecord.from_json(_payment())
    assert record.utility_ref == "UT20260501ab" and record.refund_reason is None
    said = {"utility_says": "credited", "utility_ref": "UT1", "reason": None, "payment": _payment()}
    assert CreditingAnswer.from_json(said).payment.status == "credited"
    with pytest.raises(MalformedAnswer):
        CreditingAnswer.from_json({**said, "utility_says": "maybe"})
    with pytest.raises(MalformedAnswer):
        PaymentRecord.from_json(_payment(utility_ref=7))
    assert Processing.from_json({"payment_id": "pay_1", "status": "processing"}).payment_id
    with pytest.raises(MalformedAnswer):
        Processing.from_json({"payment_id": "pay_1", "status": "succeeded"})


@pytest.fixture
def bill() -> Any:
    from tvapp.services.records import Bill

    return Bill(
        bill_id="bill_1",
        account_id="acc_1",
        utility="electricity",
        biller_code="B",
        biller_name="供电公司",
        account_no_masked="****1234",
        bill_ref="B-05",
        period="2026-05",
        amount_fen=4560,
        currency="CNY",
        due_date="2026-06-15",
        status="unpaid",
        overdue=False,
    )
