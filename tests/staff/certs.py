"""Test manufacturer CAs and attestations made directly with `cryptography`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dongle.staff.attestation import Attestation
from protocol.signing import Algorithm, ProvisioningAttestation, sign

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class TestCA:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def make_ca(name: str) -> TestCA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return TestCA(cert, key)


def attest(
    ca: TestCA,
    serial: str,
    nonce: bytes,
    *,
    cert_serial: str | None = None,
    expired: bool = False,
    signed_nonce: bytes | None = None,
) -> Attestation:
    """An attestation of dongle ``serial`` whose attestation certificate ``ca`` issued."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = NOW - dt.timedelta(days=400 if expired else 1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, cert_serial or serial),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, cert_serial or serial),
                ]
            )
        )
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=300 if expired else 3650))
        .sign(ca.key, hashes.SHA256())
    )
    payload = ProvisioningAttestation(Algorithm.ES256, serial, 0, b"", signed_nonce or nonce)
    return Attestation(
        dongle_id=serial,
        key_rev=0,
        public_key=b"",
        nonce=nonce,
        signature=sign(key, payload.signed_bytes()),
        certificates=(cert.public_bytes(serialization.Encoding.DER),),
    )
