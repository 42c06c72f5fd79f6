"""Binding an account with the 6-digit bind code printed on the bill (instead of the holder's
name), the per-household brute-force pause, and the 0002 migration of existing accounts."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from gateway.bills_import import import_rows, read_file
from gateway.bind_codes import hash_bind_code, verify_bind_code
from gateway.clock import now
from gateway.config import GatewayConfig
from gateway.context import build_context
from gateway.db.engine import make_engine
from gateway.db.migrate import upgrade
from gateway.db.models import BindFailure, Household, UtilityAccount
from gateway.errors import ImportFileError
from gateway.keys import ensure_keys
from gateway.ratelimit import WINDOW_SECONDS
from tests.gateway.conftest import fresh_database_url, serve_in_thread
from tests.gateway.helpers import GatewayUnderTest, Manufacturer, bill_rows

CODE = "402719"


def _spouse_account(gw: GatewayUnderTest, code: str | None = CODE) -> str:
    """A water account held by 李娜 (not the household's 张伟), with ``code`` on its bills."""
    account_no = str(uuid.uuid4().int)[:10]
    rows = bill_rows(account_no, "李娜", 2, "water")
    if code is not None:
        rows = [replace(row, bind_code=code) for row in rows]
    gw.ctx.db.write(lambda s: import_rows(s, rows, "t"))
    return account_no


def _bind(gw: GatewayUnderTest, token: str, account_no: str, **proof: str) -> dict:
    body = {"utility": "water", "account_no": account_no, **proof}
    response = gw.call("POST", "/api/v1/accounts", token, json=body)
    return {"status": response.status_code, **response.json(), "headers": response.headers}


def test_hash_is_salted_and_never_the_code() -> None:
    first, second = hash_bind_code(CODE), hash_bind_code(CODE)
    assert first != second and CODE not in first
    assert verify_bind_code(CODE, first) and not verify_bind_code("402718", first)


def test_spouse_held_account_binds_with_the_code_from_the_bill(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    account_no = _spouse_account(gw)
    bound = _bind(gw, token, account_no, bind_code=CODE)
    assert (bound["status"], bound["holder_name_masked"]) == (201, "李*")
    stored = gw.ctx.db.read(
        lambda s: s.scalar(
            select(UtilityAccount.bind_code_hash).where(UtilityAccount.account_no == account_no)
        )
    )
    assert stored.startswith("scrypt$") and CODE not in stored


def test_wrong_code_is_refused_with_tries_left(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    wrong = _bind(gw, token, _spouse_account(gw), bind_code="000000")
    assert (wrong["status"], wrong["error"]["code"]) == (403, "bind_code_mismatch")
    assert "printed on the" in wrong["error"]["message"]
    assert "4 tries left" in wrong["error"]["message"]


@pytest.mark.parametrize(
    "proof",
    [{}, {"holder_name": "李娜", "bind_code": CODE}],
    ids=["neither", "both"],
)
def test_exactly_one_proof_is_required(gw: GatewayUnderTest, proof: dict[str, str]) -> None:
    _dongle, token, _bills = gw.paying_household()
    refused = _bind(gw, token, _spouse_account(gw), **proof)
    assert (refused["status"], refused["error"]["code"]) == (422, "bind_proof_required")


@pytest.mark.parametrize("code", ["12345", "1234567", "١٢٣٤٥٦", "12345a"])
def test_a_code_that_is_not_six_ascii_digits_is_invalid(gw: GatewayUnderTest, code: str) -> None:
    _dongle, token, _bills = gw.paying_household()
    refused = _bind(gw, token, _spouse_account(gw), bind_code=code)
    assert (refused["status"], refused["error"]["code"]) == (422, "invalid_request")


def test_five_wrong_codes_pause_binding_even_with_the_right_code(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    account_no = _spouse_account(gw)
    codes = [_bind(gw, token, account_no, bind_code=f"00000{i}")["status"] for i in range(5)]
    assert codes == [403] * 5
    paused = _bind(gw, token, account_no, bind_code=CODE)
    assert (paused["status"], paused["error"]["code"]) == (429, "too_many_attempts")
    assert "try again in 15 minutes" in paused["error"]["message"]
    assert 0 < int(paused["headers"]["Retry-After"]) <= WINDOW_SECONDS


def test_the_pause_is_per_household(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    account_no = _spouse_account(gw)
    for i in range(5):
        _bind(gw, token, account_no, bind_code=f"00000{i}")
    _other, other_token, _ = gw.paying_household()
    assert _bind(gw, other_token, account_no, bind_code=CODE)["status"] == 201


def test_wrong_codes_older_than_the_window_no_longer_count(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    account_no = _spouse_account(gw)
    household_id = gw.ctx.db.read(
        lambda s: s.scalar(select(Household.id).order_by(Household.id.desc()))
    )
    old = now() - WINDOW_SECONDS - 1
    gw.ctx.db.write(
        lambda s: s.execute(insert(BindFailure), [{"household_id": household_id, "at": old}] * 5)
    )
    assert _bind(gw, token, account_no, bind_code=CODE)["status"] == 201


def test_account_without_a_code_binds_only_by_name(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    account_no = _spouse_account(gw, code=None)
    by_code = _bind(gw, token, account_no, bind_code=CODE)
    assert (by_code["status"], by_code["error"]["code"]) == (422, "bind_code_not_issued")
    assert _bind(gw, token, account_no, holder_name="李娜")["status"] == 201


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_upgrade_from_0001_keeps_accounts_without_a_code(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, manufacturer: Manufacturer
) -> None:
    url = fresh_database_url(request, backend, tmp_path)
    engine = make_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO billers (code, name, utility) VALUES ('W', '自来水集团', 'water');")
        )
        conn.execute(
            text(
                "INSERT INTO utility_accounts (id, biller_code, utility, account_no, holder_name,"
                " address, unit) VALUES ('acc_old', 'W', 'water', '5550001111', '李娜',"
                " '北京市朝阳区建设路1号', 'm3')"
            )
        )
    engine.dispose()
    config = GatewayConfig(
        state_dir=tmp_path, database_url=url, manufacturer_ca=(manufacturer.ca_path,)
    )
    ensure_keys(tmp_path, config.gateway_id)
    ctx = build_context(config)
    served, server, thread = serve_in_thread(ctx)
    try:
        gw = GatewayUnderTest.setup(served, ctx, manufacturer)
        token = gw.session_token(gw.provision(gw.household()))
        refused = _bind(gw, token, "5550001111", bind_code=CODE)
        assert refused["error"]["code"] == "bind_code_not_issued"
        assert _bind(gw, token, "5550001111", holder_name="李娜")["status"] == 201
    finally:
        server.should_exit = True
        thread.join(10)
        ctx.db.engine.dispose()


def test_bills_file_with_a_bad_bind_code_imports_nothing(tmp_path: Path) -> None:
    header = (
        "biller_code,biller_name,utility,account_no,holder_name,address,bill_ref,period,"
        "amount_fen,currency,due_date,bind_code\n"
    )
    good = "W,自来水,water,5550002222,李娜,北京市,W-1,2025-01,1200,CNY,2025-02-15,004211\n"
    bad = "W,自来水,water,5550003333,李娜,北京市,W-2,2025-01,1200,CNY,2025-02-15,4211\n"
    path = tmp_path / "bills.csv"
    path.write_text(header + good + bad, encoding="utf-8")
    with pytest.raises(ImportFileError, match="row 2: bind_code must be exactly 6 digits"):
        read_file(path)
    path.write_text(header + good, encoding="utf-8")
    assert [row.bind_code for row in read_file(path)] == ["004211"]
