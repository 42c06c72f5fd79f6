"""The virtual factory: a manufacturer CA and factory-fresh dongles with attestation certificates.

The manufacturer CA (``manufacturer-ca.pem`` + ``manufacturer-ca.key``, 0600) lives in the state
directory beside the dongles; the staff tool and the gateway trust its certificate.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from emulator.firmware.state import DongleState
from emulator.firmware.store import DongleStore, stored_serials

CA_CERT_NAME = "manufacturer-ca.pem"
CA_KEY_NAME = "manufacturer-ca.key"
_VALIDITY = dt.timedelta(days=20 * 365)


@dataclass(frozen=True, slots=True)
class ManufacturerCA:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path


def private_scalar(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_numbers().private_value.to_bytes(32, "big")


def load_or_create_ca(directory: Path) -> ManufacturerCA:
    """The manufacturer CA of ``directory``, created on first use."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not a P-256 key; remove both CA files to recreate")
        return ManufacturerCA(cert, key, cert_path)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TVPay Virtual Manufacturing"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TVPay Virtual Manufacturer CA"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ManufacturerCA(cert, key, cert_path)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def attestation_certificate(
    ca: ManufacturerCA, serial: str, public_key: ec.EllipticCurvePublicKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TVPay"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
            x509.NameAttribute(NameOID.COMMON_NAME, serial),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )


def new_serial(rng: random.Random) -> str:
    """A dongle id such as ``TVP0000A1B2C3``: "TVP" and 10 hex digits."""
    return f"TVP{rng.getrandbits(40):010X}"


def manufacture(directory: Path, ca: ManufacturerCA, serial: str) -> DongleState:
    """Create one factory-fresh dongle (attestation key and certificate) in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = attestation_certificate(ca, serial, key.public_key())
    state = DongleState(
        serial=serial,
        attestation_key=private_scalar(key),
        attestation_cert=cert.public_bytes(serialization.Encoding.DER),
    )
    DongleStore(directory, serial).create(state)
    return state


def manufacture_batch(directory: Path, count: int, seed: int | None = None) -> list[str]:
    """Create ``count`` new dongles with fresh serials; a seed makes the serials reproducible."""
    ca = load_or_create_ca(directory)
    rng = random.Random(seed)
    taken = set(stored_serials(directory))
    made: list[str] = []
    while len(made) < count:
        serial = new_serial(rng)
        if serial in taken:
            continue
        manufacture(directory, ca, serial)
        taken.add(serial)
        made.append(serial)
    return made
