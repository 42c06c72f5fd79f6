"""Is this dongle genuine? Check an ATTEST answer against the trusted manufacturer CAs.

The dongle answers ATTEST(nonce) with its attestation certificate chain (leaf first) and an ES256
signature by the factory attestation key over ProvisioningAttestation (docs/protocol.md §5.3).
We accept it only when the chain ends at a CA we were configured with, every certificate is in
its validity period, the leaf names the dongle's serial, and the signature covers our nonce.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dongle.staff.errors import ConfigError, NotGenuine
from protocol.errors import PayloadError
from protocol.signing import Algorithm, ProvisioningAttestation, verify


@dataclass(frozen=True, slots=True)
class Attestation:
    dongle_id: str
    key_rev: int
    public_key: bytes  # the payment key, or b"" before one exists
    nonce: bytes
    signature: bytes
    certificates: tuple[bytes, ...]  # DER, attestation certificate first

    @classmethod
    def from_results(cls, serial: str, nonce: bytes, results: Mapping[str, Any]) -> Attestation:
        """Build from ATTEST results; NotGenuine when the answer is malformed."""
        certs = results.get("certificates")
        fields = (results.get("public_key"), results.get("signature"), results.get("key_rev"))
        if (
            not isinstance(certs, list)
            or not certs
            or not all(isinstance(c, bytes) for c in certs)
            or not isinstance(fields[0], bytes)
            or not isinstance(fields[1], bytes)
            or not isinstance(fields[2], int)
        ):
            raise NotGenuine(
                f"dongle {serial} sent a malformed attestation: it is not a genuine TVPay "
                "dongle or its firmware is damaged; set it aside"
            )
        return cls(serial, fields[2], fields[0], nonce, fields[1], tuple(certs))


@dataclass(frozen=True, slots=True)
class Genuine:
    """A verified attestation: who made the dongle."""

    dongle_id: str
    key_rev: int
    has_key: bool
    manufacturer: str  # subject of the trusted CA the chain ends at


def load_cas(paths: Iterable[str]) -> list[x509.Certificate]:
    """The trusted manufacturer CA certificates (PEM files, several certificates each allowed)."""
    cas: list[x509.Certificate] = []
    for path in paths:
        try:
            cas += x509.load_pem_x509_certificates(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"cannot read the manufacturer CA {path}: {exc.strerror}; check --manufacturer-ca"
            ) from None
        except ValueError:
            raise ConfigError(
                f"{path} holds no PEM certificate: point --manufacturer-ca at the "
                "manufacturer CA certificate"
            ) from None
    if not cas:
        raise ConfigError(
            "no manufacturer CA is configured: pass --manufacturer-ca FILE (or set "
            "TVPAY_MANUFACTURER_CA, or [attestation] manufacturer_ca in staff.toml)"
        )
    return cas


def verify_attestation(
    attestation: Attestation, cas: list[x509.Certificate], now: dt.datetime | None = None
) -> Genuine:
    """Check the chain up to one of ``cas`` and the signature over the nonce; NotGenuine if not."""
    serial = attestation.dongle_id
    now = now or dt.datetime.now(dt.UTC)
    try:
        chain = [x509.load_der_x509_certificate(der) for der in attestation.certificates]
    except ValueError:
        raise _forged(serial, "its attestation certificate cannot be parsed") from None
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise _forged(serial, "an attestation certificate is outside its validity period")
    for child, parent in itertools.pairwise(chain):
        if not _issued_by(child, parent):
            raise _forged(serial, "its attestation chain is broken")
    anchor = next((ca for ca in cas if _issued_by(chain[-1], ca)), None)
    if anchor is None:
        raise NotGenuine(
            f"dongle {serial} was not made by a trusted manufacturer: its attestation chain "
            f"ends at a CA named '{chain[-1].issuer.rfc4514_string()}' whose key is not that of "
            "any configured manufacturer CA; set the dongle aside and report it (or check "
            "--manufacturer-ca)"
        )
    leaf = chain[0]
    names = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if names and names[0].value != serial:
        raise _forged(serial, f"its attestation certificate belongs to {names[0].value}")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _forged(serial, "its attestation key is not a P-256 key")
    try:
        payload = ProvisioningAttestation(
            alg=Algorithm.ES256,
            dongle_id=serial,
            key_rev=attestation.key_rev,
            public_key=attestation.public_key,
            nonce=attestation.nonce,
        )
    except PayloadError as exc:
        raise _forged(serial, f"its attestation is malformed ({exc})") from None
    if not verify(key, payload.signed_bytes(), attestation.signature):
        raise _forged(serial, "its attestation signature does not verify")
    return Genuine(serial, attestation.key_rev, bool(attestation.public_key), _name(anchor))


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _forged(serial: str, why: str) -> NotGenuine:
    return NotGenuine(
        f"dongle {serial} failed the genuineness check: {why}; set it aside and report it"
    )
