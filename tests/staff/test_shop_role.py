"""`provision --role shop` against a real daemon, virtual dongles on the cable and a real gateway
(the shop added with the gateway's own `shop add` command): a shop's dongle is registered only
for a shop and a home's only for a home, the refusal says what to do, and the same dongle is
then provisioned with the right role by a rerun."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.staff.harness import PIN, Bench


def _shop(bench: Bench) -> str:
    number = "77" + "".join(secrets.choice("0123456789") for _ in range(8))  # a 户号 in form
    added = bench.gateway.cli(
        "shop", "add", number, "--name", "楼下便利店", "--address", "上海市浦东新区测试路1号",
        "--commission-bp", "50",
    )  # fmt: skip
    assert f"shop {number} added" in added
    assert number in bench.gateway.cli("shop", "list")
    return number


def _report(bench: Bench, serial: str) -> int:
    token = bench.open_session(serial).json()["token"]
    return bench.gateway.call("GET", "/api/v1/shop/report?date=2025-06-01", token=token).status_code


def test_a_shop_dongle_is_provisioned_for_a_shop_only(bench: Bench) -> None:
    serial, shop, home = bench.take(), _shop(bench), bench.household()
    refused = bench.provision(serial, home, "--role", "shop")
    assert refused.rc == 4, refused.stderr
    error = refused.json["error"]
    assert error["kind"] == "gateway_refused"
    assert "is a home, not a shop" in error["message"] and "--role home" in error["message"]
    assert bench.gateway.dongle(serial) is None  # nothing registered
    done = bench.provision(serial, shop, "--role", "shop")
    assert done.rc == 0, done.stderr
    assert (done.json["account"], done.json["role"], done.json["status"]) == (
        shop,
        "shop",
        "active",
    )
    assert bench.gateway.dongle(serial)["household_no"] == shop
    assert _report(bench, serial) == 200  # the shop's box sees its day


def test_a_home_dongle_is_provisioned_for_a_home_only(bench: Bench) -> None:
    serial, shop, home = bench.take(), _shop(bench), bench.household()
    refused = bench.provision(serial, shop)  # the default role: home
    assert refused.rc == 4, refused.stderr
    assert "--role shop" in refused.json["error"]["message"]
    assert bench.gateway.dongle(serial) is None
    done = bench.provision(serial, home, "--role", "home")
    assert done.rc == 0, done.stderr
    assert done.json["role"] == "home"
    assert _report(bench, serial) == 403  # a home's box is not a shop


def test_an_unknown_role_is_a_usage_error(bench: Bench) -> None:
    result = bench.tool("--json", "provision", "--account", "1234", "--role", "boss")
    assert result.rc == 2
    assert "invalid choice: 'boss'" in result.json["error"]["message"]


def _batch(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "dongles.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_a_batch_row_names_its_role(bench: Bench, tmp_path: Path) -> None:
    serial, shop = bench.take(), _shop(bench)
    bad = _batch(tmp_path, ["serial,account,role", f"{serial},{shop},boss"])
    refused = bench.tool("--json", "batch", bad, "--out", str(tmp_path / "bad.csv"))
    assert refused.rc == 2
    assert "line 2: role is home or shop, not 'boss'" in refused.json["error"]["message"]
    source = _batch(tmp_path, ["serial,account,pin,role", f"{serial},{shop},{PIN},shop"])
    result = bench.tool("--json", "batch", source, "--out", str(tmp_path / "out.csv"))
    assert result.rc == 0, result.stderr
    assert [r["status"] for r in result.json["rows"]] == ["active"]
    assert bench.gateway.dongle(serial)["household_no"] == shop
    assert _report(bench, serial) == 200
