"""protocol.pki: the CAs and certificates every component builds, and the attestation check that
the gateway and the staff tool both rely on."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace

import pytest
from cryptography import x509

from protocol import pki
from protocol.errors import AttestationError, CertificateError, UntrustedManufacturer
from tests.fixtures.attestation import attest, make_ca

SERIAL = "TVP00000000AA"
NONCE = os.urandom(32)


@pytest.fixture(scope="module")
def maker() -> pki.CertificateAuthority:
    return make_ca("Maker CA")


def test_root_ca_is_a_self_signed_ca_that_may_sign_certificates(maker) -> None:
    cert = maker.certificate
    cert.verify_directly_issued_by(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (constraints.ca, constraints.path_length) == (True, 0)
    assert usage.key_cert_sign and not usage.digital_signature


def test_issued_certificate_is_a_leaf_with_the_given_extensions(maker) -> None:
    key = pki.new_key()
    uri = x509.UniformResourceIdentifier("urn:tvpay:household:H1")
    cert = maker.issue(
        pki.subject_name("TVP1", organization="TVPay", serial="TVP1"),
        key.public_key(),
        days=10,
        extensions=[(x509.SubjectAlternativeName([uri]), False)],
    )
    cert.verify_directly_issued_by(maker.certificate)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value[0] == uri
    assert cert.subject.rfc4514_string() == "CN=TVP1,2.5.4.5=TVP1,O=TVPay"


def test_validity_starts_slightly_in_the_past_and_lasts_the_given_days(maker) -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    cert = maker.issue(pki.subject_name("x"), pki.new_key().public_key(), days=7, now=now)
    assert cert.not_valid_before_utc == now - pki.BACKDATE
    assert cert.not_valid_after_utc == now + dt.timedelta(days=7)


def test_private_key_round_trips_through_pem() -> None:
    key = pki.new_key()
    loaded = pki.load_private_key_pem(pki.private_key_pem(key))
    assert loaded.private_numbers() == key.private_numbers()


def test_garbage_private_key_is_a_certificate_error() -> None:
    with pytest.raises(CertificateError, match="not an unencrypted PEM private key"):
        pki.load_private_key_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_pem_bundle_yields_every_certificate(maker) -> None:
    other = pki.make_ca(pki.subject_name("Other CA"), days=1)
    bundle = pki.certificate_pem(maker.certificate) + pki.certificate_pem(other.certificate)
    assert pki.load_pem_certificates(bundle) == [maker.certificate, other.certificate]


def test_text_without_a_certificate_is_a_certificate_error() -> None:
    with pytest.raises(CertificateError, match="no PEM certificate"):
        pki.load_pem_certificates(b"not a certificate")


def test_genuine_attestation_returns_the_trusted_anchor(maker) -> None:
    assert (
        pki.verify_attestation(attest(maker, SERIAL, NONCE), [maker.certificate])
        == maker.certificate
    )


def test_chain_through_an_intermediate_ca_is_accepted(maker) -> None:
    line = pki.make_ca(pki.subject_name("Line 3"), days=30, issuer=maker)
    att = attest(line, SERIAL, NONCE, chain=(line.certificate,))
    assert pki.verify_attestation(att, [maker.certificate]) == maker.certificate


def test_intermediate_that_is_not_a_ca_is_refused(maker) -> None:
    impostor_key = pki.new_key()
    impostor = maker.issue(pki.subject_name("leaf"), impostor_key.public_key(), days=30)
    fake_ca = pki.CertificateAuthority(impostor_key, impostor)
    with pytest.raises(AttestationError, match="not a CA"):
        pki.verify_attestation(
            attest(fake_ca, SERIAL, NONCE, chain=(impostor,)), [maker.certificate]
        )


def test_unknown_manufacturer_is_named_in_the_refusal(maker) -> None:
    forger = pki.make_ca(pki.subject_name("Forger CA"), days=30)
    with pytest.raises(UntrustedManufacturer, match=r"not made by a trusted manufacturer.*Forger"):
        pki.verify_attestation(attest(forger, SERIAL, NONCE), [maker.certificate])


def test_signature_over_another_nonce_is_refused(maker) -> None:
    with pytest.raises(AttestationError, match="signature does not verify") as caught:
        pki.verify_attestation(
            attest(maker, SERIAL, NONCE, signed_nonce=bytes(32)), [maker.certificate]
        )
    assert caught.value.dongle_id == SERIAL
    assert "set it aside" in str(caught.value)


def test_certificate_of_another_dongle_is_refused(maker) -> None:
    with pytest.raises(AttestationError, match="belongs to TVP00000000BB"):
        pki.verify_attestation(
            attest(maker, SERIAL, NONCE, cert_serial="TVP00000000BB"), [maker.certificate]
        )


def test_expired_attestation_certificate_is_refused(maker) -> None:
    expired = attest(maker, SERIAL, NONCE, expired=True)
    with pytest.raises(AttestationError, match="validity period"):
        pki.verify_attestation(expired, [maker.certificate])


def test_unparsable_certificate_is_refused(maker) -> None:
    bad = replace(attest(maker, SERIAL, NONCE), certificates=(b"\x30\x03junk",))
    with pytest.raises(AttestationError, match="cannot be parsed"):
        pki.verify_attestation(bad, [maker.certificate])


def test_too_long_a_chain_is_refused(maker) -> None:
    att = attest(maker, SERIAL, NONCE)
    too_long = replace(att, certificates=att.certificates * (pki.MAX_ATTESTATION_CHAIN + 1))
    with pytest.raises(AttestationError, match="certificates"):
        pki.verify_attestation(too_long, [maker.certificate])


def test_nothing_trusted_refuses_every_attestation(maker) -> None:
    with pytest.raises(AttestationError, match="no manufacturer CA"):
        pki.verify_attestation(attest(maker, SERIAL, NONCE), [])
