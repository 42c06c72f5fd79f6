"""Every command of docs/protocol.md §4, through usb.core and DongleLink."""

from __future__ import annotations

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from dongle.usblink import DongleLink
from protocol.errors import DongleError, DongleWrongState
from protocol.messages import Command, Status
from protocol.pin import AAD_NEW_PIN, encrypt
from protocol.signing import (
    Algorithm,
    ProvisioningAttestation,
    SessionChallenge,
    load_public_key,
    public_key_bytes,
    verify,
)
from tests.fixtures.dongles import OperatorCA, Provisioned, open_link, pin_session


def test_ping_echoes_data(link: DongleLink) -> None:
    assert link.call(Command.PING, {"data": b"\x00hello" * 1000})["data"] == b"\x00hello" * 1000


def test_ping_refuses_more_than_8000_bytes(link: DongleLink) -> None:
    with pytest.raises(DongleError) as caught:
        link.call(Command.PING, {"data": bytes(8001)})
    assert caught.value.status == Status.INVALID_PARAMETER


def test_get_info_describes_a_factory_dongle(link: DongleLink) -> None:
    info = link.call(Command.GET_INFO, {"version": 1})
    assert info["serial"] == link.serial
    assert info["state"] == "factory"
    assert info["versions"] == [1]
    assert info["algorithms"] == [-7]
    assert {"pin2", "idempotent-sign", "keepalive", "cancel", "attest"} <= set(info["capabilities"])
    assert (info["counter"], info["key_rev"], info["pin_set"]) == (0, 0, False)


def test_get_info_refuses_an_unknown_version(link: DongleLink) -> None:
    with pytest.raises(DongleError) as caught:
        link.call(Command.GET_INFO, {"version": 9})
    assert caught.value.status == Status.UNSUPPORTED_VERSION


def test_key_agreement_key_is_a_p256_point(link: DongleLink) -> None:
    load_public_key(link.call(Command.GET_KEY_AGREEMENT)["key"])


def test_attestation_chain_verifies_up_to_the_manufacturer_ca(link: DongleLink, bus) -> None:  # type: ignore[no-untyped-def]
    ca_cert = x509.load_pem_x509_certificate((bus.state_dir / "manufacturer-ca.pem").read_bytes())
    nonce = os.urandom(32)
    result = link.call(Command.ATTEST, {"nonce": nonce})
    cert = x509.load_der_x509_certificate(result["certificates"][0])
    cert.verify_directly_issued_by(ca_cert)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value == link.serial
    signed = ProvisioningAttestation(Algorithm.ES256, link.serial, 0, b"", nonce).signed_bytes()
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert verify(key, signed, result["signature"])


def test_attestation_covers_the_payment_key_once_generated(link: DongleLink) -> None:
    public = link.call(Command.GENERATE_KEY)["public_key"]
    result = link.call(Command.ATTEST, {"nonce": bytes(16)})
    assert (result["public_key"], result["key_rev"]) == (public, 1)


def test_generate_key_again_bumps_key_rev(link: DongleLink) -> None:
    first = link.call(Command.GENERATE_KEY)
    second = link.call(Command.GENERATE_KEY)
    assert (first["key_rev"], second["key_rev"]) == (1, 2)
    assert first["public_key"] != second["public_key"]


def test_write_cert_then_read_cert(link: DongleLink) -> None:
    public = link.call(Command.GENERATE_KEY)["public_key"]
    cert = OperatorCA.create().issue(public, link.serial)
    link.call(Command.WRITE_CERT, {"certificate": cert})
    assert link.call(Command.READ_CERT)["certificate"] == cert
    assert link.call(Command.GET_INFO)["state"] == "certified"


def test_write_cert_for_another_key_is_a_key_mismatch(link: DongleLink) -> None:
    link.call(Command.GENERATE_KEY)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert = OperatorCA.create().issue(public_key_bytes(other), link.serial)
    with pytest.raises(DongleError) as caught:
        link.call(Command.WRITE_CERT, {"certificate": cert})
    assert caught.value.status == Status.KEY_MISMATCH


def test_write_cert_refuses_garbage(link: DongleLink) -> None:
    link.call(Command.GENERATE_KEY)
    with pytest.raises(DongleError) as caught:
        link.call(Command.WRITE_CERT, {"certificate": b"not a certificate"})
    assert caught.value.status == Status.INVALID_PARAMETER


def test_read_cert_is_null_before_provisioning(link: DongleLink) -> None:
    assert link.call(Command.READ_CERT)["certificate"] is None


def test_provisioning_ends_locked(link: DongleLink, provisioned: Provisioned) -> None:
    info = link.call(Command.GET_INFO)
    assert (info["state"], info["pin_set"], info["certificate"]) == ("locked", True, True)


@pytest.mark.parametrize(
    ("command", "params"),
    [
        (Command.WRITE_CERT, {"certificate": b"x"}),
        (Command.LOCK, {}),
        (Command.GET_PIN_TOKEN, {}),
        (Command.SIGN_SESSION, {}),
    ],
)
def test_commands_outside_their_state_are_wrong_state(
    link: DongleLink, command: Command, params: dict
) -> None:
    with pytest.raises(DongleWrongState) as caught:
        link.call(command, params)
    assert caught.value.status == Status.WRONG_STATE
    assert caught.value.body["state"] == "factory"


def test_no_key_generation_after_lock(link: DongleLink, provisioned: Provisioned) -> None:
    with pytest.raises(DongleWrongState):
        link.call(Command.GENERATE_KEY)


def test_lock_without_pin_is_pin_not_set(link: DongleLink) -> None:
    public = link.call(Command.GENERATE_KEY)["public_key"]
    link.call(Command.WRITE_CERT, {"certificate": OperatorCA.create().issue(public, "x")})
    with pytest.raises(DongleError) as caught:
        link.call(Command.LOCK)
    assert caught.value.status == Status.PIN_NOT_SET


def test_set_pin_refuses_a_weak_pin(link: DongleLink) -> None:
    public = link.call(Command.GENERATE_KEY)["public_key"]
    link.call(Command.WRITE_CERT, {"certificate": OperatorCA.create().issue(public, "x")})
    session = pin_session(link)
    with pytest.raises(DongleError) as caught:
        link.call(
            Command.SET_PIN,
            {
                "key_agreement": session.public_key,
                "new_pin_enc": encrypt(session.shared_key, b"123456", AAD_NEW_PIN),
                "puk_enc": session.puk_enc("13572468"),
            },
        )
    assert caught.value.status == Status.PIN_POLICY


def test_sign_session_verifies_with_the_payment_key(
    link: DongleLink, provisioned: Provisioned
) -> None:
    challenge = os.urandom(32)
    result = link.call(
        Command.SIGN_SESSION,
        {"gateway_id": "gw-test", "challenge": challenge, "timestamp": 1_790_000_000},
    )
    signed = SessionChallenge(
        Algorithm.ES256, "gw-test", link.serial, provisioned.key_rev, challenge, 1_790_000_000
    ).signed_bytes()
    assert verify(load_public_key(provisioned.public_key), signed, result["signature"])


def test_wipe_needs_confirmation(link: DongleLink) -> None:
    with pytest.raises(DongleError) as caught:
        link.call(Command.WIPE, {"confirm": "yes"})
    assert caught.value.status == Status.INVALID_PARAMETER


def test_wipe_returns_to_factory_and_keeps_key_rev(
    link: DongleLink, provisioned: Provisioned
) -> None:
    link.call(Command.WIPE, {"confirm": "WIPE"})
    info = link.call(Command.GET_INFO)
    assert (info["state"], info["key_rev"], info["pin_set"]) == ("factory", 1, False)
    assert link.call(Command.READ_CERT)["certificate"] is None
    assert link.call(Command.GENERATE_KEY)["key_rev"] == 2


def test_state_survives_a_power_cycle(
    link: DongleLink, provisioned: Provisioned, bus, bus_and_backend
) -> None:  # type: ignore[no-untyped-def]
    bus.unplug(link.serial)
    bus.plug(link.serial)
    with open_link(bus_and_backend[1]) as again:
        info = again.call(Command.GET_INFO)
    assert (info["state"], info["key_rev"]) == ("locked", 1)
