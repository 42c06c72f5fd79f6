"""Payments through the daemon: PIN protocol relay, signatures, wrong PINs, concurrency, progress."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dongle import pin_client
from dongle.client import DaemonClient
from dongle.model import Priority, SignedPayment
from protocol.errors import DonglePinBlocked, DonglePinInvalid
from protocol.signing import Algorithm, PaymentAuthorization, SessionChallenge, load_public_key
from protocol.signing import verify as verify_signature
from tests.daemon.conftest import (
    DaemonProcess,
    EventLog,
    ProvisionedDongle,
    provision_via_daemon,
    start_daemon,
)
from tests.fixtures.dongle_keys import attested_key
from tests.fixtures.dongles import TEST_PIN, payment_fields, running_cable


def pay(client: DaemonClient, fields: dict, pin: str = TEST_PIN, **kwargs: object) -> SignedPayment:
    token = pin_client.obtain_pin_token(client, pin, attested_key(client))
    return client.sign_payment(fields, pin_client.payment_pin_auth(token, fields), **kwargs)


def _verifies(dongle: ProvisionedDongle, fields: dict, signed: SignedPayment) -> bool:
    layout = PaymentAuthorization(
        alg=Algorithm.ES256,
        dongle_id=signed.dongle_id,
        key_rev=signed.key_rev,
        counter=signed.counter,
        **fields,
    )
    return verify_signature(
        load_public_key(dongle.public_key), layout.signed_bytes(), signed.signature
    )


def test_payment_signature_verifies_with_the_dongle_key(
    client: DaemonClient, provisioned: ProvisionedDongle
) -> None:
    fields = payment_fields()
    with client.acquire():
        signed = pay(client, fields)
    assert signed.dongle_id == provisioned.serial
    assert signed.counter == 1 and not signed.replayed
    assert _verifies(provisioned, fields, signed)
    assert client.info().counter == 1


def test_the_same_payment_is_never_signed_twice(
    client: DaemonClient, provisioned: ProvisionedDongle
) -> None:
    fields = payment_fields()
    first = pay(client, fields)
    again = pay(client, fields)
    assert again.replayed and again.counter == first.counter
    assert again.signature == first.signature


def test_session_signature_needs_no_pin(
    client: DaemonClient, provisioned: ProvisionedDongle
) -> None:
    signed = client.sign_session("gw-test", b"c" * 32, 1_790_000_000)
    layout = SessionChallenge(
        Algorithm.ES256, "gw-test", signed.dongle_id, signed.key_rev, b"c" * 32, 1_790_000_000
    )
    assert verify_signature(
        load_public_key(provisioned.public_key), layout.signed_bytes(), signed.signature
    )


def test_wrong_pin_reports_the_retries_left(
    client: DaemonClient, provisioned: ProvisionedDongle
) -> None:
    with pytest.raises(DonglePinInvalid) as caught:
        pin_client.obtain_pin_token(client, "135790", provisioned.key)
    assert caught.value.retries == 2
    assert client.info().pin_retries == 2


def test_third_wrong_pin_blocks_and_is_announced(
    client: DaemonClient, provisioned: ProvisionedDongle, events: EventLog
) -> None:
    for _ in range(2):
        with pytest.raises(DonglePinInvalid):
            pin_client.obtain_pin_token(client, "135790", provisioned.key)
    with pytest.raises(DonglePinBlocked):
        pin_client.obtain_pin_token(client, "135790", provisioned.key)
    events.wait("state_changed", provisioned.serial, state="pin_blocked")
    events.wait("pin_blocked", provisioned.serial)
    pin_client.unblock_pin(client, provisioned.puk, "975318", provisioned.key)
    events.wait("state_changed", provisioned.serial, state="locked")
    assert pay(client, payment_fields(), pin="975318").counter == 1


def test_pin_change_through_the_daemon(
    client: DaemonClient, provisioned: ProvisionedDongle
) -> None:
    pin_client.change_pin(client, provisioned.pin, "864209", provisioned.key)
    assert pay(client, payment_fields(), pin="864209").counter == 1


def test_concurrent_clients_are_all_served(
    daemon: DaemonProcess, provisioned: ProvisionedDongle
) -> None:
    failures: list[BaseException] = []
    counts: list[int] = []

    def worker(index: int) -> None:
        try:
            with daemon.client(f"worker{index}") as client:
                for round_ in range(20):
                    assert client.ping(bytes([index, round_])) == bytes([index, round_])
                    client.sign_session("gw-test", bytes([index]) * 16, 1_790_000_000 + round_)
                counts.append(index)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert sorted(counts) == list(range(6))


def test_several_dongles_need_a_serial(workdir: Path) -> None:
    with running_cable(2) as cable:
        daemon = start_daemon(workdir, cable)
        try:
            with daemon.client() as client:
                with pytest.raises(Exception, match="several payment dongles"):
                    client.ping(b"x")
                serials = sorted(d.serial for d in client.devices())
                assert serials == sorted(cable.serials)
                assert client.ping(b"x", serial=serials[1]) == b"x"
        finally:
            daemon.stop()


@pytest.fixture
def slow_daemon(workdir: Path) -> Iterator[DaemonProcess]:
    """A daemon in front of dongles with secure-element timings (they send KEEPALIVE)."""
    with running_cable(1, timing="hardware") as cable:
        daemon = start_daemon(workdir, cable)
        try:
            yield daemon
        finally:
            daemon.stop()


def test_keepalive_is_relayed_as_progress(slow_daemon: DaemonProcess) -> None:
    with slow_daemon.client("tvapp", priority=Priority.HIGH) as client:
        provision_via_daemon(client)
        progress: list[str] = []
        signed = pay(client, payment_fields(), on_progress=progress.append)
        assert signed.counter == 1
        assert progress and set(progress) == {"processing"}
