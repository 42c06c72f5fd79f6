"""Interrupted provisioning: at every step, by unplugging, with the gateway down; then a rerun.

Whatever stopped a run, a dongle must never be active at the gateway while unusable, nor usable
(a session opens) while not active; and rerunning the same command must finish the job.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from dongle import pin_client
from dongle.model import DongleEvent
from dongle.staff.provision import STEPS, Step
from protocol.errors import DonglePinBlocked, DonglePinInvalid
from tests.fixtures.dongle_keys import attested_key
from tests.staff.harness import PIN, ROOT, Bench
from tests.staff.holding_gateway import HoldingGateway

HOOK = "TVPAY_STAFF_FAIL_AFTER"


def assert_consistent(bench: Bench, serial: str) -> None:
    info = bench.info(serial)
    record = bench.gateway.dongle(serial)
    if record is not None and record["status"] == "active":
        assert info.state == "locked", "active at the gateway but the dongle is not usable"
        assert record["key_rev"] == info.key_rev
    else:
        assert bench.open_session(serial).status_code != 201, "usable while not active"


def interrupt(bench: Bench, serial: str, household: str, step: Step) -> dict[str, Any]:
    result = bench.provision(serial, household, **{HOOK: str(step)})
    assert result.rc == 130, result.stderr
    body = result.json
    assert body["error"]["kind"] == "interrupted"
    assert body["step"] == str(step)
    assert_consistent(bench, serial)
    return body


@pytest.mark.parametrize("step", STEPS, ids=str)
def test_interrupted_after_each_step_then_rerun_finishes(bench: Bench, step: Step) -> None:
    serial, household = bench.take(), bench.household()
    if step is Step.WIPE:
        interrupt(bench, serial, household, Step.WRITE_CERT)  # a wipe happens only on a restart
    failed = interrupt(bench, serial, household, step)
    locked = step in (Step.LOCK, Step.ACTIVATE)
    assert (failed["puk"] is not None) == locked  # the PUK is never lost once the dongle is locked

    rerun = bench.provision(serial, household)
    if step is Step.ACTIVATE:
        assert rerun.rc == 3
        assert rerun.json["error"]["kind"] == "already_provisioned"
    else:
        assert rerun.rc == 0, rerun.stderr
        body = rerun.json
        assert body["resumed"] is (step is Step.LOCK)
        assert body["restarted"] is (step in (Step.WRITE_CERT, Step.SET_PIN))
        assert (body["puk"] is None) is (step is Step.LOCK)
    assert bench.gateway.dongle(serial)["status"] == "active"
    assert bench.open_session(serial).status_code == 201
    assert bench.pin_works(serial)


def test_puk_printed_when_interrupted_after_lock_unblocks_the_dongle(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    puk = interrupt(bench, serial, household, Step.LOCK)["puk"]
    assert bench.provision(serial, household).rc == 0
    with bench.daemon.client() as client:
        for _ in range(3):
            with pytest.raises((DonglePinInvalid, DonglePinBlocked)):
                pin_client.obtain_pin_token(client, "975310", attested_key(client, serial))
    assert bench.info(serial).state == "pin_blocked"
    result = bench.tool("--json", "pin", "unblock", "--serial", serial, stdin=f"{puk}\n802461\n")
    assert result.rc == 0, result.stderr
    assert bench.pin_works(serial, "802461")


def test_rerun_after_unplug_and_replug_finishes(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    interrupt(bench, serial, household, Step.REGISTER)
    control = bench.cable.control()
    control.unplug(serial)
    bench.wait_plugged(serial, plugged=False)
    gone = bench.provision(serial, household)
    assert gone.rc == 3, gone.stderr
    control.plug(serial)
    bench.wait_plugged(serial)
    control.close()
    assert_consistent(bench, serial)
    rerun = bench.provision(serial, household)
    assert rerun.rc == 0, rerun.stderr
    assert bench.open_session(serial).status_code == 201


def test_unplugged_in_the_middle_of_provisioning_then_rerun_finishes(bench: Bench) -> None:
    # A real unplug while the tool runs: the moment the certificate is on the dongle.
    serial, household = bench.take(), bench.household()
    control = bench.cable.control()
    unplugged = threading.Event()

    def on_event(event: DongleEvent) -> None:
        if event.serial == serial and event.state == "certified" and not unplugged.is_set():
            unplugged.set()
            control.unplug(serial)

    with bench.daemon.client() as client, client.subscribe(on_event):
        result = bench.provision(serial, household)
    assert unplugged.is_set()
    assert result.rc == 3, result.stderr
    # The unplug is asynchronous to the tool: on a loaded machine it may land as late as the
    # activation, after the lock. Either way the rerun must finish from what it finds.
    step = result.json["step"]
    assert step in ("write_cert", "set_pin", "lock", "activate")
    control.plug(serial)
    bench.wait_plugged(serial)
    control.close()
    assert_consistent(bench, serial)
    locked = bench.info(serial).state == "locked"  # the lock may have landed before the unplug
    rerun = bench.provision(serial, household)
    assert rerun.rc == 0, rerun.stderr
    assert rerun.json["resumed" if locked else "restarted"] is True
    assert bench.open_session(serial).status_code == 201


def test_gateway_stopped_before_activation_then_rerun_resumes(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    interrupt(bench, serial, household, Step.LOCK)
    bench.gateway.stop()
    try:
        down = bench.provision(serial, household)
        assert down.rc == 4
        assert "unreachable" in down.json["error"]["message"]
        assert bench.info(serial).state == "locked"
    finally:
        bench.gateway.start()
    assert bench.gateway.dongle(serial)["status"] == "pending"
    rerun = bench.provision(serial, household)
    assert rerun.rc == 0, rerun.stderr
    assert rerun.json["resumed"] is True
    assert bench.open_session(serial).status_code == 201


def test_real_ctrl_c_in_the_middle_then_rerun_finishes(bench: Bench) -> None:
    serial, household = bench.take(), bench.household()
    # The key is generated when the tool asks the gateway for an attestation nonce: the relay
    # holds that request, so the SIGINT lands mid-run at a point the test knows, never after
    # a run that finished first.
    relay = HoldingGateway(bench.gateway.url, "/api/v1/staff/attestation-nonce")
    command = [sys.executable, "-m", "dongle.staff.cli", "--json", "provision"]
    command += ["--account", household, "--pin", PIN, "--serial", serial]
    try:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=bench.env(TVPAY_GATEWAY_URL=relay.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert relay.held.wait(60), "the tool never asked for an attestation nonce"
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=60)
    finally:
        relay.close()
    assert process.returncode == 130, stdout
    assert json.loads(stdout)["error"]["kind"] == "interrupted"
    assert bench.info(serial).state == "key_generated"
    assert_consistent(bench, serial)
    rerun = bench.provision(serial, household)
    assert rerun.rc == 0, rerun.stderr
    assert bench.open_session(serial).status_code == 201
