"""A dongle whose answers arrive late (the cable's "delay" fault) is slower, not gone: the
daemon opens it, answers info and signs, as long as each answer comes within the timeout."""

from __future__ import annotations

import time
from pathlib import Path

from dongle import pin_client
from tests.daemon.conftest import provision_via_daemon, start_daemon
from tests.fixtures.dongles import TEST_PIN, CableProcess, payment_fields

DELAY = 0.2  # longer than the link's 100 ms read slices, well inside its timeout


def test_a_delayed_dongle_still_answers_info_and_signs(workdir: Path, cable: CableProcess) -> None:
    serial = cable.serials[0]
    with cable.control() as control:
        # Armed before the daemon starts, so its very first GET_INFO is delayed too.
        control.fault(serial, "delay", seconds=DELAY, direction="in", count=0)
    daemon = start_daemon(workdir, cable)
    try:
        client = daemon.client()
        try:
            started = time.monotonic()
            info = client.info()
            assert info.serial == serial and info.state == "factory"
            assert time.monotonic() - started >= DELAY  # the answer really was held back
            dongle = provision_via_daemon(client)
            fields = payment_fields()
            with client.acquire():
                token = pin_client.obtain_pin_token(client, TEST_PIN, dongle.key)
                signed = client.sign_payment(fields, pin_client.payment_pin_auth(token, fields))
            assert signed.dongle_id == serial and signed.counter == 1
            assert client.info().counter == 1
        finally:
            client.close()
    finally:
        daemon.stop()
        daemon.notify.close()
    removals = [line for line in daemon.log().splitlines() if "event=dongle_removed" in line]
    assert all("reason=shutdown" in line for line in removals), removals
