"""Guessing a holder name or bind code to take over another household's account: one limiter
for both proofs, per household and per account, every attempt audited, and the owner still binds
while an account is under attack."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

from gateway.bills_import import import_rows
from gateway.ratelimit import ACCOUNT_LIMIT, HOUSEHOLD_LIMIT, WINDOW_SECONDS
from gateway.registry import create_household
from tests.gateway.helpers import GatewayUnderTest, bill_rows

CODE = "402719"
HOLDER = "李娜"


def _account(gw: GatewayUnderTest) -> str:
    """An unbound water account held by 李娜, with CODE printed on its bills."""
    account_no = str(uuid.uuid4().int)[:10]
    rows = [replace(row, bind_code=CODE) for row in bill_rows(account_no, HOLDER, 1, "water")]
    gw.ctx.db.write(lambda s: import_rows(s, rows, "t"))
    return account_no


def _household(gw: GatewayUnderTest, name: str = "张伟") -> tuple[str, str]:
    """A household registered under ``name`` with an open device session: (number, token)."""
    number = str(uuid.uuid4().int)[:10]
    gw.ctx.db.write(lambda s: create_household(s, "test", number, name, "北京市朝阳区建设路1号"))
    return number, gw.session_token(gw.provision(number))


def _bind(gw: GatewayUnderTest, token: str, account_no: str, **proof: str) -> dict:
    body = {"utility": "water", "account_no": account_no, **proof}
    response = gw.call("POST", "/api/v1/accounts", token, json=body)
    return {"status": response.status_code, **response.json(), "headers": response.headers}


def _code(answer: dict) -> tuple[int, str]:
    return answer["status"], answer.get("error", {}).get("code", "")


def _spray(gw: GatewayUnderTest, account_no: str) -> list[str]:
    """ACCOUNT_LIMIT households each try one wrong name: under every household's own limit."""
    tokens = [_household(gw)[1] for _ in range(ACCOUNT_LIMIT)]
    for i, token in enumerate(tokens):
        wrong = _bind(gw, token, account_no, holder_name=f"王{i}")
        assert _code(wrong) == (422, "holder_name_mismatch")
    return tokens


def test_name_guesses_from_one_household_pause_it_even_for_the_right_name(
    gw: GatewayUnderTest,
) -> None:
    _number, token = _household(gw)
    account_no = _account(gw)
    for i in range(HOUSEHOLD_LIMIT - 1):
        wrong = _bind(gw, token, account_no, holder_name=f"王{i}")
        assert _code(wrong) == (422, "holder_name_mismatch")
        assert f"{HOUSEHOLD_LIMIT - 1 - i} tries left" in wrong["error"]["message"]
    # One limiter for both proofs: a wrong code is the fifth failure.
    assert _code(_bind(gw, token, account_no, bind_code="000000")) == (403, "bind_code_mismatch")
    for proof in ({"holder_name": HOLDER}, {"bind_code": CODE}):
        paused = _bind(gw, token, account_no, **proof)
        assert _code(paused) == (429, "too_many_attempts")
        assert "try again in 15 minutes" in paused["error"]["message"]
        assert 0 < int(paused["headers"]["Retry-After"]) <= WINDOW_SECONDS
    other_account = _account(gw)  # the pause is the household's, whatever account it tries
    assert _code(_bind(gw, token, other_account, holder_name=HOLDER)) == (429, "too_many_attempts")


def test_a_name_spray_from_many_households_is_stopped_at_the_account(
    gw: GatewayUnderTest,
) -> None:
    account_no = _account(gw)
    sprayers = _spray(gw, account_no)
    again = _bind(gw, sprayers[0], account_no, holder_name=HOLDER)
    assert _code(again) == (429, "account_bind_paused")
    fresh = _bind(gw, _household(gw)[1], account_no, holder_name=HOLDER)  # the right name
    assert _code(fresh) == (429, "account_bind_paused")
    assert "bind code printed on the bill" in fresh["error"]["message"]
    assert 0 < int(fresh["headers"]["Retry-After"]) <= WINDOW_SECONDS
    code_guess = _bind(gw, sprayers[1], account_no, bind_code="111111")
    assert _code(code_guess) == (429, "account_bind_paused")


def test_the_owner_binds_with_the_code_during_a_spray(gw: GatewayUnderTest) -> None:
    account_no = _account(gw)
    _spray(gw, account_no)
    _number, owner = _household(gw)
    assert _bind(gw, owner, account_no, bind_code=CODE)["status"] == 201


def test_the_household_registered_under_the_holder_name_binds_by_name_during_a_spray(
    gw: GatewayUnderTest,
) -> None:
    account_no = _account(gw)
    _spray(gw, account_no)
    _number, owner = _household(gw, HOLDER)
    assert _bind(gw, owner, account_no, holder_name=HOLDER)["status"] == 201


def test_every_attempt_is_audited_without_the_name_or_code(gw: GatewayUnderTest) -> None:
    number, token = _household(gw)
    account_no = _account(gw)
    _bind(gw, token, account_no, holder_name="王五")
    _bind(gw, token, account_no, bind_code="000000")
    _bind(gw, token, account_no, bind_code=CODE)
    entries = gw.staff("GET", "/audit?limit=20").json()["entries"]
    mine = [e for e in entries if e["actor"] == f"household:{number}"]
    assert [(e["action"], e["details"]["proof"], e["details"]["outcome"]) for e in mine] == [
        ("account_bind", "bind_code", "bound"),
        ("account_bind", "bind_code", "bind_code_mismatch"),
        ("account_bind", "holder_name", "holder_name_mismatch"),
    ]
    assert len({e["target"] for e in mine}) == 1 and mine[0]["target"].startswith("acc_")
    logged = json.dumps(mine, ensure_ascii=False)
    assert "王五" not in logged and CODE not in logged and account_no not in logged


def test_probing_which_account_numbers_exist_costs_tries_too(gw: GatewayUnderTest) -> None:
    _number, token = _household(gw)
    for i in range(HOUSEHOLD_LIMIT):
        unknown = _bind(gw, token, f"99000000{i:02d}", holder_name=HOLDER)
        assert _code(unknown) == (404, "account_not_found")
        assert f"{HOUSEHOLD_LIMIT - 1 - i} tries left" in unknown["error"]["message"]
    real = _bind(gw, token, _account(gw), holder_name=HOLDER)
    assert _code(real) == (429, "too_many_attempts")
