"""`list`, `info`, `verify`, `pin`, `reset`, `revoke`, `doctor`, and the exit codes."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from dongle import pin_client
from emulator.stack.tls import ensure_tls
from protocol.display import display_hash
from protocol.errors import DonglePinBlocked, DonglePinInvalid
from tests.fixtures.dongle_keys import attested_key
from tests.gateway.helpers import shown_text
from tests.staff.harness import PIN, ROOT, Bench, Gateway


def provisioned(bench: Bench, household: str | None = None) -> tuple[str, str, str]:
    serial, household = bench.take(), household or bench.household()
    result = bench.provision(serial, household)
    assert result.rc == 0, result.stderr
    return serial, household, result.json["puk"]


def block_pin(bench: Bench, serial: str) -> None:
    with bench.daemon.client() as client:
        for _ in range(3):
            with pytest.raises((DonglePinInvalid, DonglePinBlocked)):
                pin_client.obtain_pin_token(client, "975310", attested_key(client, serial))


def test_list_shows_every_plugged_dongle(bench: Bench) -> None:
    result = bench.tool("--json", "list")
    assert result.rc == 0, result.stderr
    listed = {d["serial"]: d for d in result.json["dongles"]}
    assert set(bench.cable.serials) <= set(listed)
    assert listed[bench.forged]["state"] == "factory"


def test_list_human_output_is_a_table(bench: Bench) -> None:
    result = bench.tool("list")
    assert result.rc == 0
    assert "serial" in result.stdout
    assert bench.forged in result.stdout


def test_info_shows_state_counters_and_certificate(bench: Bench) -> None:
    serial, household, _ = provisioned(bench)
    result = bench.tool("info", "--serial", serial, "--json")  # global option after the command
    assert result.rc == 0, result.stderr
    body = result.json
    assert (body["serial"], body["state"], body["pin_set"], body["pin_retries"]) == (
        serial,
        "locked",
        True,
        3,
    )
    assert body["certificate"]["household_no"] == household
    assert "TVPay operator CA" in body["certificate"]["issuer"]


def test_info_of_a_factory_dongle_has_no_certificate(bench: Bench) -> None:
    result = bench.tool("--json", "info", "--serial", bench.forged)
    assert result.rc == 0
    assert result.json["certificate"] is None


def test_info_without_serial_with_several_dongles_asks_for_one(bench: Bench) -> None:
    result = bench.tool("--json", "info")
    assert result.rc == 3
    assert "name one with its serial number" in result.json["error"]["message"]


def test_verify_accepts_a_genuine_dongle(bench: Bench) -> None:
    serial = bench.take()
    result = bench.tool("--json", "verify", "--serial", serial)
    assert result.rc == 0, result.stderr
    assert result.json["genuine"] is True
    assert result.json["manufacturer"] == "TVPay Virtual Manufacturer CA"


def test_verify_refuses_a_dongle_from_another_manufacturer(bench: Bench) -> None:
    result = bench.tool("verify", "--serial", bench.forged)
    assert result.rc == 3
    assert "not made by a trusted manufacturer" in result.stderr


def test_verify_with_only_the_forgers_ca_refuses_genuine_dongles(bench: Bench) -> None:
    serial = bench.take()
    env = bench.env(TVPAY_MANUFACTURER_CA=str(bench.forger_ca))
    result = bench.tool("--json", "verify", "--serial", serial, env=env)
    assert result.rc == 3
    assert result.json["error"]["kind"] == "not_genuine"


def test_pin_change_with_the_current_pin(bench: Bench) -> None:
    serial, _, _ = provisioned(bench)
    result = bench.tool("--json", "pin", "change", "--serial", serial, stdin=f"{PIN}\n864209\n")
    assert result.rc == 0, result.stderr
    assert bench.pin_works(serial, "864209")


def test_pin_change_with_a_wrong_pin_says_tries_left(bench: Bench) -> None:
    serial, _, _ = provisioned(bench)
    result = bench.tool("--json", "pin", "change", "--serial", serial, stdin="975310\n864209\n")
    assert result.rc == 3
    assert "2 tries left" in result.json["error"]["message"]
    assert bench.pin_works(serial)


def test_pin_unblock_with_a_wrong_puk_is_refused_and_counts(bench: Bench) -> None:
    serial, _, puk = provisioned(bench)
    block_pin(bench, serial)
    wrong = "86420975" if puk != "86420975" else "97531864"
    result = bench.tool("--json", "pin", "unblock", "--serial", serial, stdin=f"{wrong}\n802461\n")
    assert result.rc == 3
    assert "wrong PUK" in result.json["error"]["message"]
    assert "9 tries left" in result.json["error"]["message"]
    assert bench.info(serial).state == "pin_blocked"
    good = bench.tool("--json", "pin", "unblock", "--serial", serial, stdin=f"{puk}\n802461\n")
    assert good.rc == 0, good.stderr
    assert bench.pin_works(serial, "802461")


def test_pin_prompt_without_input_is_a_usage_error(bench: Bench) -> None:
    serial, _, _ = provisioned(bench)
    result = bench.tool("--json", "pin", "change", "--serial", serial, stdin="")
    assert result.rc == 2
    assert bench.pin_works(serial)


def test_reset_refuses_an_active_dongle(bench: Bench) -> None:
    serial, _, _ = provisioned(bench)
    result = bench.tool("--json", "reset", "--serial", serial, "--force")
    assert result.rc == 3
    assert "revoke it first" in result.json["error"]["message"]
    assert bench.info(serial).state == "locked"


def test_reset_without_confirmation_does_nothing(bench: Bench) -> None:
    serial = bench.take()
    assert bench.provision(serial, bench.household(), TVPAY_STAFF_FAIL_AFTER="write_cert").rc == 130
    result = bench.tool("--json", "reset", "--serial", serial)
    assert result.rc == 2
    assert "not confirmed" in result.json["error"]["message"]
    assert bench.info(serial).state == "certified"


def test_revoke_reset_and_provision_again(bench: Bench) -> None:
    serial, household, _ = provisioned(bench)
    key_rev = bench.info(serial).key_rev
    revoked = bench.tool("--json", "revoke", "--serial", serial, "--reason", "lost")
    assert revoked.rc == 0, revoked.stderr
    assert (revoked.json["status"], revoked.json["revoke_reason"]) == ("revoked", "lost")
    reset = bench.tool("--json", "reset", "--serial", serial, "--force")
    assert reset.rc == 0, reset.stderr
    assert reset.json["state"] == "factory"
    again = bench.provision(serial, household)
    assert again.rc == 0, again.stderr
    assert again.json["key_rev"] > key_rev
    assert bench.open_session(serial).status_code == 201


def test_revoke_then_payment_is_refused_at_the_gateway(bench: Bench) -> None:
    line = bench.gateway.cli("demo-data", "--households", "1", "--seed", "77").splitlines()[0]
    household = json.loads(line)["household_no"]
    serial, _, _ = provisioned(bench, household)
    session = bench.open_session(serial)
    assert session.status_code == 201, session.text
    token = session.json()["token"]
    bills = bench.gateway.call("GET", "/api/v1/bills?status=unpaid", token=token).json()["bills"]
    bill = bills[0]
    created = bench.gateway.call(
        "POST",
        "/api/v1/payments",
        {"bill_id": bill["bill_id"], "amount_fen": bill["amount_fen"], "currency": "CNY"},
        token=token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 201, created.text
    text = shown_text(created.json()["sign_fields"])
    fields = {**created.json()["sign_fields"], "display_hash": display_hash(text)}
    fields["challenge"] = base64.b64decode(fields["challenge"])
    with bench.daemon.client() as client:
        pin_token = pin_client.obtain_pin_token(client, PIN, attested_key(client, serial))
        signed = client.sign_payment(fields, pin_client.payment_pin_auth(pin_token, fields), serial)

    revoked = bench.tool("--json", "revoke", "--serial", serial, "--reason", "stolen")
    assert revoked.rc == 0, revoked.stderr

    authorize = bench.gateway.call(
        "POST",
        f"/api/v1/payments/{fields['payment_id']}/authorize",
        {
            "dongle_id": serial,
            "key_rev": signed.key_rev,
            "counter": signed.counter,
            "signature": base64.b64encode(signed.signature).decode(),
            "display_text": text,
        },
    )
    assert authorize.status_code == 403
    assert authorize.json()["error"]["code"] == "dongle_not_active"
    assert bench.open_session(serial).status_code == 403


def test_revoke_of_an_unknown_dongle_is_a_gateway_refusal(bench: Bench) -> None:
    result = bench.tool("--json", "revoke", "--serial", "TVP0000DEAD00", "--reason", "lost")
    assert result.rc == 4


def test_doctor_is_mounted(bench: Bench) -> None:
    result = bench.tool("doctor")
    assert "passed" in result.stdout
    assert result.rc in (0, 1)  # 1: this machine has no udev rule or USB device nodes


def test_doctor_takes_its_own_options(bench: Bench) -> None:
    result = bench.tool("doctor", "--rules-dir", str(ROOT / "packaging" / "udev"))
    assert "[ ok ] udev rule: " in result.stdout, result.stdout + result.stderr
    assert f"answers at {bench.daemon.socket_path}" in result.stdout


def test_unknown_command_is_a_usage_error(bench: Bench) -> None:
    result = bench.tool("--json", "frobnicate")
    assert result.rc == 2
    assert result.json["error"]["kind"] == "usage"


def test_gateway_over_tls_needs_its_ca_file(bench: Bench, tmp_path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    secure = Gateway(bench.gateway.state_dir, bench.gateway.token)
    secure.start(tls)
    try:
        assert secure.url.startswith("https://")
        serial = bench.take()
        args = ("--json", "revoke", "--serial", serial, "--reason", "lost")
        untrusted = bench.tool(*args, env=bench.env(TVPAY_GATEWAY_URL=secure.url))
        assert untrusted.rc == 4
        assert "--ca-file" in untrusted.json["error"]["message"]
        trusted = bench.tool(
            "--ca-file", str(tls.ca_cert), *args, env=bench.env(TVPAY_GATEWAY_URL=secure.url)
        )
        assert trusted.rc == 4  # reached the gateway: it does not know this dongle
        assert trusted.json["error"]["kind"] == "gateway_refused", trusted.stdout
    finally:
        secure.stop()


def test_a_dongle_held_by_another_program_is_busy_and_untouched(bench: Bench) -> None:
    serial = bench.take()
    with bench.daemon.client() as other, other.acquire(serial):
        result = bench.provision(serial, bench.household())
    assert result.rc == 3
    assert "held by bench-test" in result.json["error"]["message"]
    assert bench.info(serial).state == "factory"


def test_token_file_is_used_when_no_token_variable_is_set(bench: Bench, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(bench.gateway.token + "\n")
    token_file.chmod(0o600)
    env = bench.env()
    del env["TVPAY_STAFF_TOKEN"]
    result = bench.tool(
        "--json",
        "--token-file",
        str(token_file),
        "revoke",
        "--serial",
        "TVP0000DEAD01",
        "--reason",
        "lost",
        env=env,
    )
    assert result.rc == 4
    assert result.json["error"]["kind"] == "gateway_refused"  # authenticated: unknown dongle
    assert "staff token" not in result.json["error"]["message"]


def test_token_file_readable_by_others_is_refused(bench: Bench, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(bench.gateway.token + "\n")
    token_file.chmod(0o644)
    env = bench.env()
    del env["TVPAY_STAFF_TOKEN"]
    result = bench.tool(
        "--json",
        "revoke",
        "--serial",
        "TVP0000DEAD01",
        "--reason",
        "lost",
        "--token-file",
        str(token_file),
        env=env,
    )
    assert result.rc == 2
    assert "chmod 600" in result.json["error"]["message"]
