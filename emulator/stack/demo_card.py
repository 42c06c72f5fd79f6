"""The demo household's bank card: a card account at the bank simulator and a direct-debit mandate
bound by staff (`tvpay-gateway mandate bind`), so the TV offers two ways to pay.

Done once per state directory (``StackRecord.demo_card_bound``). A run stopped between the bind
and the record finds the mandate already listed and does not bind it again.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import replace

from emulator.stack.layout import Layout
from emulator.stack.money import bank_env
from emulator.stack.record import StackRecord
from emulator.stack.setup import SetupError
from emulator.stack.tools import run_tool

DEMO_CARD_MASKED = "622202******1234"
DEMO_CARD_BALANCE_FEN = 500_000  # ¥5,000: every demo bill several times over
PER_PAYMENT_LIMIT_FEN = 50_000
MONTHLY_LIMIT_FEN = 200_000
_BANK_TIMEOUT = 10.0


def demo_bank_token(household_no: str) -> str:
    """The card's token at the bank: what the bank would hand the gateway when the mandate is
    signed (letters, digits, '-' only, as the bank requires)."""
    return f"demo-card-{household_no}"


def _open_card_account(bank_url: str, bank_token: str) -> None:
    body = json.dumps(
        {"bank_token": bank_token, "balance_fen": DEMO_CARD_BALANCE_FEN, "currency": "CNY"}
    ).encode("utf-8")
    request = urllib.request.Request(
        bank_url + "/control/accounts",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=_BANK_TIMEOUT) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise SetupError(
            f"the bank simulator at {bank_url} refused the demo card account ({exc});"
            " see logs/bank.log"
        ) from exc


def _gateway(layout: Layout, bank_url: str, *args: str) -> str:
    return run_tool(
        "tvpay-gateway",
        ["--state-dir", str(layout.gateway), *args],
        env=bank_env(bank_url),
        log_path=layout.logs / "setup.log",
    )


def add_demo_card(layout: Layout, bank_url: str, record: StackRecord) -> StackRecord:
    """Open the demo card's account with its balance, then bind its mandate unless it is bound."""
    assert record.demo is not None
    household = record.demo.household_no
    token = demo_bank_token(household)
    _open_card_account(bank_url, token)
    listed = _gateway(layout, bank_url, "mandate", "list", "--household", household)
    if not any(DEMO_CARD_MASKED in line.split("\t") for line in listed.splitlines()):
        _gateway(
            layout,
            bank_url,
            "mandate",
            "bind",
            "--household",
            household,
            "--bank-token",
            token,
            "--card-masked",
            DEMO_CARD_MASKED,
            "--per-payment-limit-fen",
            str(PER_PAYMENT_LIMIT_FEN),
            "--monthly-limit-fen",
            str(MONTHLY_LIMIT_FEN),
        )
    return replace(record, demo_card_bound=True)
