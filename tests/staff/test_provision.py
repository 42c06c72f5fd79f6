"""`provision` against a real daemon, virtual dongles on the cable and a real gateway."""

from __future__ import annotations

from protocol.pin import check_puk
from tests.staff.harness import PIN, Bench


def test_provisioned_dongle_is_locked_active_and_opens_a_session(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    result = bench.provision(serial, household)
    assert result.rc == 0, result.stderr
    body = result.json
    assert body["ok"] is True
    assert (body["serial"], body["account"], body["status"]) == (serial, household, "active")
    check_puk(body["puk"])
    info = bench.info(serial)
    assert (info.state, info.key_rev, info.pin_set) == ("locked", body["key_rev"], True)
    record = bench.gateway.dongle(serial)
    assert record is not None
    assert (record["status"], record["household_no"]) == ("active", household)
    assert bench.open_session(serial).status_code == 201
    assert bench.pin_works(serial)


def test_every_step_is_logged_without_pin_or_puk(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    result = bench.provision(serial, household)
    assert result.rc == 0, result.stderr
    steps = [
        line.split(" step=")[1].split()[0]
        for line in result.stderr.splitlines()
        if "event=provision.step" in line
    ]
    assert steps == [
        "inspect",
        "check_genuine",
        "generate_key",
        "attest",
        "register",
        "write_cert",
        "set_pin",
        "lock",
        "activate",
    ]
    assert PIN not in result.stderr
    assert result.json["puk"] not in result.stderr
    assert household not in result.stderr  # only its last 4 digits


def test_human_output_shows_the_puk_once(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    result = bench.tool("provision", "--account", household, "--pin", PIN, "--serial", serial)
    assert result.rc == 0, result.stderr
    assert "Provisioned" in result.stdout
    puk = result.stdout.split("PUK: ")[1].split()[0]
    check_puk(puk)
    assert result.stdout.count(puk) == 1


def test_pin_is_prompted_from_stdin_when_not_given(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    result = bench.tool(
        "--json", "provision", "--account", household, "--serial", serial, stdin="135792\n"
    )
    assert result.rc == 0, result.stderr
    assert bench.pin_works(serial, "135792")


def test_already_provisioned_dongle_is_refused_and_unchanged(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    assert bench.provision(serial, household).rc == 0
    before = bench.info(serial)
    again = bench.provision(serial, household)
    assert again.rc == 3
    assert again.json["error"]["kind"] == "already_provisioned"
    assert "already provisioned" in again.json["error"]["message"]
    assert bench.info(serial) == before
    assert bench.gateway.dongle(serial)["status"] == "active"


def test_wrong_account_format_is_a_usage_error_and_touches_nothing(bench: Bench) -> None:
    serial = bench.take()
    result = bench.provision(serial, "33-00X")
    assert result.rc == 2
    assert "not a household number" in result.json["error"]["message"]
    assert bench.info(serial).state == "factory"


def test_unknown_household_is_refused_before_the_dongle_is_touched(bench: Bench) -> None:
    serial = bench.take()
    result = bench.provision(serial, "3399999999")
    assert result.rc == 4
    assert "not known at the gateway" in result.json["error"]["message"]
    assert bench.info(serial).state == "factory"
    assert bench.gateway.dongle(serial) is None


def test_pin_breaking_the_policy_is_refused(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    result = bench.tool(
        "--json", "provision", "--account", household, "--pin", "123456", "--serial", serial
    )
    assert result.rc == 2
    assert "consecutive" in result.json["error"]["message"]
    assert bench.info(serial).state == "factory"


def test_dongle_from_an_unknown_manufacturer_is_refused(bench: Bench) -> None:
    household = bench.household()
    result = bench.provision(bench.forged, household)
    assert result.rc == 3
    error = result.json["error"]
    assert error["kind"] == "not_genuine"
    assert "not made by a trusted manufacturer" in error["message"]
    assert bench.info(bench.forged).state == "factory"
    assert bench.gateway.dongle(bench.forged) is None


def test_gateway_refuses_a_forgery_the_tool_was_told_to_trust(bench: Bench) -> None:
    # Even a mis-configured bench cannot register a forged dongle: the gateway checks again.
    household = bench.household()
    trust_both = f"{bench.cable.manufacturer_ca}:{bench.forger_ca}"
    result = bench.provision(bench.forged, household, TVPAY_MANUFACTURER_CA=trust_both)
    assert result.rc == 4
    assert result.json["step"] == "register"
    assert bench.gateway.dongle(bench.forged) is None
    assert bench.info(bench.forged).state != "locked"


def test_gateway_unreachable_is_a_clear_failure_with_nothing_done(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    env = bench.env(TVPAY_GATEWAY_URL="http://127.0.0.1:9")
    result = bench.tool(
        "--json", "provision", "--account", household, "--pin", PIN, "--serial", serial, env=env
    )
    assert result.rc == 4
    assert "unreachable" in result.json["error"]["message"]
    assert bench.info(serial).state == "factory"


def test_no_daemon_is_exit_5(bench: Bench, tmp_path) -> None:
    household = bench.household()
    env = bench.env(TVPAY_DONGLED_SOCKET=str(tmp_path / "absent.sock"))
    result = bench.tool(
        "--json", "provision", "--account", household, "--pin", PIN, "--serial", "X", env=env
    )
    assert result.rc == 5
    assert "start it with 'systemctl start tvpay-dongled'" in result.json["error"]["message"]


def test_missing_staff_token_is_a_usage_error(bench: Bench) -> None:
    env = bench.env()
    del env["TVPAY_STAFF_TOKEN"]
    result = bench.tool(
        "--json", "provision", "--account", bench.household(), "--pin", PIN, env=env
    )
    assert result.rc == 2
    assert "TVPAY_STAFF_TOKEN" in result.json["error"]["message"]


def test_refused_staff_token_is_a_gateway_problem(bench: Bench) -> None:
    serial = bench.take()
    env = bench.env(TVPAY_STAFF_TOKEN="tvps_not-a-real-token")
    result = bench.tool(
        "--json", "provision", "--account", "3300000001", "--pin", PIN, "--serial", serial, env=env
    )
    assert result.rc == 4
    assert "staff token" in result.json["error"]["message"]
    assert bench.info(serial).state == "factory"
