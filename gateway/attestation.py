"""Checks a dongle's factory attestation: certificate chain up to a trusted manufacturer CA, and
the attestation key's signature over ``ProvisioningAttestation`` (docs/protocol.md §5.3)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError, Unprocessable
from protocol.errors import PayloadError
from protocol.signing import Algorithm, ProvisioningAttestation, verify

MAX_CHAIN = 4


@dataclass(frozen=True, slots=True)
class Attestation:
    dongle_id: str
    key_rev: int
    public_key: bytes
    nonce: bytes
    signature: bytes
    certificates: tuple[bytes, ...]


def _fail(why: str) -> Unprocessable:
    return Unprocessable(
        f"The dongle's attestation was refused: {why}. Check the dongle is genuine and retry "
        "from a fresh nonce.",
        code="attestation_invalid",
    )


def load_manufacturer_cas(paths: tuple[Path, ...]) -> tuple[x509.Certificate, ...]:
    """Every certificate in the configured PEM files; ConfigError naming a bad file."""
    cas: list[x509.Certificate] = []
    for path in paths:
        try:
            cas.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except FileNotFoundError:
            raise ConfigError(
                f"manufacturer CA file {path} does not exist; fix manufacturer_ca in gateway.toml"
            ) from None
        except ValueError:
            raise ConfigError(f"manufacturer CA file {path} holds no PEM certificate") from None
    return tuple(cas)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_validity(cert: x509.Certificate, now: datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise _fail(f"the {what} certificate is outside its validity period")


def verify_attestation(att: Attestation, trusted: tuple[x509.Certificate, ...]) -> None:
    """Raise ``attestation_invalid`` unless the chain and signature check out."""
    if not trusted:
        raise _fail("no manufacturer CA is configured on the gateway (run init --manufacturer-ca)")
    if not 1 <= len(att.certificates) <= MAX_CHAIN:
        raise _fail(f"1..{MAX_CHAIN} certificates are expected")
    try:
        chain = [x509.load_der_x509_certificate(der) for der in att.certificates]
    except ValueError:
        raise _fail("a certificate is not valid DER") from None
    now = datetime.now(UTC)
    for position, cert in enumerate(chain):
        _check_validity(cert, now, "attestation" if position == 0 else "intermediate")
    for child, parent in itertools.pairwise(chain):
        if not _issued_by(child, parent):
            raise _fail("the certificate chain is broken")
        if not _is_ca(parent):
            raise _fail("an intermediate certificate is not a CA")
    anchor = next((ca for ca in trusted if _issued_by(chain[-1], ca)), None)
    if anchor is None:
        raise _fail("the chain does not lead to a trusted manufacturer CA")
    _check_validity(anchor, now, "manufacturer CA")
    leaf = chain[0]
    serials = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if serials and serials[0].value != att.dongle_id:
        raise _fail("the attestation certificate belongs to another dongle")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise _fail("the attestation key is not a P-256 key")
    try:
        payload = ProvisioningAttestation(
            alg=Algorithm.ES256,
            dongle_id=att.dongle_id,
            key_rev=att.key_rev,
            public_key=att.public_key,
            nonce=att.nonce,
        )
    except PayloadError as exc:
        raise _fail(str(exc)) from None
    if not verify(key, payload.signed_bytes(), att.signature):
        raise _fail("the attestation signature does not verify")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
