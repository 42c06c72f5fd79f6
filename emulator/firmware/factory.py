"""The virtual factory: a manufacturer CA and factory-fresh dongles with attestation certificates.

The manufacturer CA (``manufacturer-ca.pem`` + ``manufacturer-ca.key``, 0600) lives in the state
directory beside the dongles; the staff tool and the gateway trust its certificate.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.files import write_private
from emulator.firmware.state import DongleState
from emulator.firmware.store import DongleStore, stored_serials
from protocol import pki
from protocol.errors import CertificateError

CA_CERT_NAME = "manufacturer-ca.pem"
CA_KEY_NAME = "manufacturer-ca.key"
_VALIDITY_DAYS = 20 * 365


@dataclass(frozen=True, slots=True)
class ManufacturerCA:
    authority: pki.CertificateAuthority
    cert_path: Path


# Makes a dongle's attestation certificate (DER) from its manufacturer, serial and public key.
CertificateMaker = Callable[[ManufacturerCA, str, ec.EllipticCurvePublicKey], bytes]


def private_scalar(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_numbers().private_value.to_bytes(32, "big")


def load_or_create_ca(directory: Path) -> ManufacturerCA:
    """The manufacturer CA of ``directory``, created on first use."""
    directory = Path(directory)
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    if cert_path.exists() and key_path.exists():
        try:
            cert = pki.load_pem_cas(cert_path.read_bytes())[0]
        except CertificateError as exc:
            raise ValueError(f"{cert_path} {exc}; remove both CA files to recreate") from None
        try:
            key = pki.load_private_key_pem(key_path.read_bytes())
        except CertificateError as exc:
            raise ValueError(f"{key_path} {exc}; remove both CA files to recreate") from None
        return ManufacturerCA(pki.CertificateAuthority(key, cert), cert_path)
    directory.mkdir(parents=True, exist_ok=True)
    name = pki.subject_name(
        "TVPay Virtual Manufacturer CA", organization="TVPay Virtual Manufacturing"
    )
    authority = pki.make_ca(name, days=_VALIDITY_DAYS)
    write_private(key_path, pki.private_key_pem(authority.key))
    cert_path.write_bytes(pki.certificate_pem(authority.certificate))
    return ManufacturerCA(authority, cert_path)


def attestation_certificate(
    ca: ManufacturerCA, serial: str, public_key: ec.EllipticCurvePublicKey
) -> x509.Certificate:
    subject = pki.subject_name(serial, organization="TVPay", serial=serial)
    return ca.authority.issue(subject, public_key, days=_VALIDITY_DAYS)


def new_serial(rng: random.Random) -> str:
    """A dongle id such as ``TVP0000A1B2C3``: "TVP" and 10 hex digits."""
    return f"TVP{rng.getrandbits(40):010X}"


def genuine_certificate(
    ca: ManufacturerCA, serial: str, public_key: ec.EllipticCurvePublicKey
) -> bytes:
    return pki.certificate_der(attestation_certificate(ca, serial, public_key))


def manufacture(
    directory: Path,
    ca: ManufacturerCA,
    serial: str,
    certificate: CertificateMaker = genuine_certificate,
) -> DongleState:
    """Create one factory-fresh dongle (attestation key and certificate) in ``directory``.

    ``certificate`` makes the attestation certificate (DER) for the dongle's new attestation
    key; another maker gives a dongle whose ATTEST answer carries a faulty certificate (the
    checks of the staff tool and the gateway are tested against such dongles). The firmware
    stores and sends it as it is: a real dongle's flash holds whatever its factory wrote.
    """
    key = pki.new_key()
    state = DongleState(
        serial=serial,
        attestation_key=private_scalar(key),
        attestation_cert=certificate(ca, serial, key.public_key()),
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
