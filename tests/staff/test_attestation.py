"""The genuineness check: chain to a configured manufacturer CA and a signature over our nonce."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from dongle.staff.attestation import attestation_from_results, load_cas, verify_attestation
from dongle.staff.errors import ConfigError, NotGenuine
from tests.fixtures.attestation import attest, make_ca

SERIAL = "TVP00000000AA"


@pytest.fixture(scope="module")
def maker():
    return make_ca("Maker CA")


def test_genuine_dongle_is_accepted(maker) -> None:
    nonce = os.urandom(32)
    genuine = verify_attestation(attest(maker, SERIAL, nonce), [maker.certificate])
    assert genuine.dongle_id == SERIAL
    assert genuine.manufacturer == "Maker CA"
    assert genuine.has_key is False


def test_unknown_manufacturer_is_refused_with_a_clear_sentence(maker) -> None:
    forger = make_ca("Forger CA")
    with pytest.raises(NotGenuine, match=r"not made by a trusted manufacturer.*Forger CA"):
        verify_attestation(attest(forger, SERIAL, os.urandom(32)), [maker.certificate])


def test_signature_over_another_nonce_is_refused(maker) -> None:
    replayed = attest(maker, SERIAL, os.urandom(32), signed_nonce=os.urandom(32))
    with pytest.raises(NotGenuine, match="signature does not verify"):
        verify_attestation(replayed, [maker.certificate])


def test_certificate_of_another_dongle_is_refused(maker) -> None:
    borrowed = attest(maker, SERIAL, os.urandom(32), cert_serial="TVP00000000BB")
    with pytest.raises(NotGenuine, match="belongs to TVP00000000BB"):
        verify_attestation(borrowed, [maker.certificate])


def test_expired_attestation_certificate_is_refused(maker) -> None:
    with pytest.raises(NotGenuine, match="validity period"):
        verify_attestation(attest(maker, SERIAL, os.urandom(32), expired=True), [maker.certificate])


def test_garbage_certificate_is_refused(maker) -> None:
    good = attest(maker, SERIAL, os.urandom(32))
    bad = replace(good, certificates=(b"\x30\x03junk",))
    with pytest.raises(NotGenuine, match="cannot be parsed"):
        verify_attestation(bad, [maker.certificate])


def test_malformed_attest_answer_is_refused() -> None:
    with pytest.raises(NotGenuine, match="malformed attestation"):
        attestation_from_results(SERIAL, b"n" * 32, {"certificates": "nope"})


def test_ca_file_without_a_certificate_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        load_cas([str(path)])


def test_no_ca_configured_says_how_to_configure_one() -> None:
    with pytest.raises(ConfigError, match="--manufacturer-ca"):
        load_cas([])
