"""protocol.pki against hostile certificates: every malformed chain is refused with a typed error
and a code, and no bytes at all make the parser raise anything else."""

from __future__ import annotations

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import pki
from protocol.errors import AttestationError, MalformedCertificate
from protocol.signing import Algorithm, ProvisioningAttestation, sign
from tests.fixtures.malformed_certs import CASES, Case, certificate, duplicate_extension

SERIAL = "TVP0000000AA1"


@pytest.fixture(scope="module")
def maker() -> pki.CertificateAuthority:
    return pki.make_ca(pki.subject_name("Maker CA"), days=365)


def attestation(chain: tuple[bytes, ...], key: ec.EllipticCurvePrivateKey) -> pki.Attestation:
    nonce = os.urandom(32)
    payload = ProvisioningAttestation(Algorithm.ES256, SERIAL, 0, b"", nonce)
    return pki.Attestation(SERIAL, 0, b"", nonce, sign(key, payload.signed_bytes()), chain)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_malformed_chain_is_refused_with_its_code(maker, case: Case) -> None:
    key = pki.new_key()
    att = attestation(case.build(maker, key.public_key(), SERIAL), key)
    with pytest.raises(AttestationError) as caught:
        pki.verify_attestation(att, [maker.certificate])
    assert caught.value.code == case.code
    assert case.says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_duplicate_extension_is_a_malformed_certificate(maker) -> None:
    der = duplicate_extension(maker, pki.new_key().public_key(), SERIAL)
    with pytest.raises(MalformedCertificate) as caught:
        pki.parse_certificate(der)
    assert caught.value.code == "duplicate_extension"


def test_genuine_certificate_parses_and_stays_readable(maker) -> None:
    cert = maker.issue(pki.subject_name(SERIAL, serial=SERIAL), pki.new_key().public_key(), days=1)
    parsed = pki.parse_certificate(pki.certificate_der(cert))
    assert parsed == cert and not pki.is_ca(parsed)
    assert pki.is_ca(pki.parse_certificate(pki.certificate_der(maker.certificate)))


def test_pem_bundle_with_a_malformed_certificate_is_refused(maker) -> None:
    good = pki.certificate_pem(maker.certificate)
    bad = duplicate_extension(maker, pki.new_key().public_key(), SERIAL)
    bundle = good + pki.certificate_pem(x509.load_der_x509_certificate(bad))
    with pytest.raises(MalformedCertificate, match="holds a certificate that has the extension"):
        pki.load_pem_certificates(bundle)


def test_a_leaf_is_not_accepted_as_a_trusted_ca(maker) -> None:
    leaf = certificate(maker, pki.new_key().public_key(), SERIAL)
    with pytest.raises(MalformedCertificate) as caught:
        pki.load_pem_cas(pki.certificate_pem(leaf))
    assert caught.value.code == "not_a_ca"


def test_a_leaf_handed_in_as_trusted_anchors_nothing(maker) -> None:
    key = pki.new_key()
    leaf_key = pki.new_key()
    leaf_as_ca = pki.CertificateAuthority(
        leaf_key, certificate(maker, leaf_key.public_key(), "Not a CA")
    )
    chain = (pki.certificate_der(certificate(leaf_as_ca, key.public_key(), SERIAL)),)
    with pytest.raises(AttestationError) as caught:
        pki.verify_attestation(attestation(chain, key), [leaf_as_ca.certificate])
    assert caught.value.code == "untrusted_manufacturer"


# ---- any bytes at all ----------------------------------------------------------------------


def _parse_or_refuse(data: bytes) -> None:
    try:
        pki.parse_certificate(data)
    except MalformedCertificate as exc:
        assert exc.code and exc.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_never_raised_otherwise(data: bytes) -> None:
    _parse_or_refuse(data)


_GOOD_KEY = pki.new_key()
_GOOD_CA = pki.make_ca(pki.subject_name("Fuzz CA"), days=365)
_GOOD_DER = pki.certificate_der(certificate(_GOOD_CA, _GOOD_KEY.public_key(), SERIAL))


@st.composite
def mutated_der(draw: st.DrawFn) -> bytes:
    """The genuine certificate with a few bytes changed, cut or inserted: mostly still DER-shaped,
    so the parser's deeper paths (extensions, keys, dates) see the damage."""
    data = bytearray(_GOOD_DER)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        if not data:
            break
    return bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_der())
def test_mutated_der_is_refused_never_raised_otherwise(data: bytes) -> None:
    _parse_or_refuse(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_der())
def test_mutated_chain_gives_only_attestation_errors(data: bytes) -> None:
    try:
        pki.verify_attestation(attestation((data,), _GOOD_KEY), [_GOOD_CA.certificate])
    except AttestationError as exc:
        assert exc.code
