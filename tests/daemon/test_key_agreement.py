"""The PIN's key agreement, bound to the dongle's payment key, through the real daemon and a real
virtual dongle (docs/protocol.md §6.1): it keeps working when the dongle re-keys, and a daemon
that answers with a key of its own gets nothing derived from the PIN."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dongle import pin_client
from dongle.client import DaemonClient, KeyAgreementOffer
from protocol.errors import DonglePinInvalid
from protocol.pin import KeyAgreementUnverified, verify_key_agreement
from protocol.signing import public_key_bytes
from tests.daemon.conftest import DaemonProcess, EventLog, ProvisionedDongle
from tests.fixtures.dongles import CableProcess, payment_fields

WRONG_PIN = "135790"


class KeySwappingClient(DaemonClient):
    """What a compromised daemon can do: answer key_agreement with its own key (keeping or
    dropping the dongle's signature), and see every encrypted PIN hash relayed to it."""

    def __init__(self, socket_path: str, *, keep_signature: bool) -> None:
        super().__init__(socket_path, client_name="evil")
        self.keep_signature = keep_signature
        self.own = ec.generate_private_key(ec.SECP256R1())
        self.pin_hashes: list[bytes] = []

    def key_agreement(self, nonce: bytes, serial: str | None = None) -> KeyAgreementOffer:
        real = super().key_agreement(nonce, serial)
        signature = real.signature if self.keep_signature else None
        return KeyAgreementOffer(public_key_bytes(self.own.public_key()), signature)

    def pin_token(
        self, key_agreement: bytes, pin_hash_enc: bytes, serial: str | None = None
    ) -> bytes:
        self.pin_hashes.append(pin_hash_enc)
        return super().pin_token(key_agreement, pin_hash_enc, serial)


def _pays(client: DaemonClient, dongle: ProvisionedDongle) -> int:
    fields = payment_fields()
    with client.acquire(dongle.serial):
        token = pin_client.obtain_pin_token(client, dongle.pin, dongle.key)
        auth = pin_client.payment_pin_auth(token, fields)
        return client.sign_payment(fields, auth, dongle.serial).counter


def test_a_bound_key_agreement_works_after_a_rekey_and_a_power_cycle(
    cable: CableProcess, client: DaemonClient, provisioned: ProvisionedDongle, events: EventLog
) -> None:
    assert _pays(client, provisioned) == 1
    with pytest.raises(DonglePinInvalid):  # a wrong PIN makes the dongle re-key
        pin_client.obtain_pin_token(client, WRONG_PIN, provisioned.key)
    assert _pays(client, provisioned) == 2
    with cable.control() as control:  # a power cycle: a new key-agreement key
        control.unplug(provisioned.serial)
        events.wait("removed", provisioned.serial)
        control.plug(provisioned.serial)
    events.wait("inserted", provisioned.serial, state="locked")
    assert _pays(client, provisioned) == 3


@pytest.mark.parametrize("keep_signature", [True, False], ids=["swapped-key", "unsigned"])
def test_a_substituted_key_agreement_gets_no_pin(
    daemon: DaemonProcess,
    provisioned: ProvisionedDongle,
    client: DaemonClient,
    keep_signature: bool,
) -> None:
    evil = KeySwappingClient(str(daemon.socket_path), keep_signature=keep_signature)
    with evil, pytest.raises(KeyAgreementUnverified, match=provisioned.serial):
        pin_client.obtain_pin_token(evil, provisioned.pin, provisioned.key)
    assert evil.pin_hashes == []
    assert client.info(provisioned.serial).pin_retries == 3


def test_the_signature_is_for_the_hosts_nonce_only(
    client: DaemonClient, provisioned: ProvisionedDongle
) -> None:
    """An old signed answer replayed for a new request does not verify: freshness is the nonce."""
    old = client.key_agreement(bytes(range(32)), provisioned.serial)
    verify_key_agreement(provisioned.key, old.key, bytes(range(32)), old.signature)
    with pytest.raises(KeyAgreementUnverified):
        verify_key_agreement(provisioned.key, old.key, bytes(range(1, 33)), old.signature)
