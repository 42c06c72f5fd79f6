"""The gateway's own keys: the operator CA that certifies dongles, the receipt signing key, and
the vending secret its simulated HSM derives prepaid keys from (purchase cards, STS tokens).

The first two are P-256, kept as PEM files (0600) in the state directory; the vending secret is
32 random bytes (0600). ``init`` creates them once; re-running it keeps them and adds any that is
missing, because replacing one would invalidate every issued certificate, receipt, card or meter
key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config import OPERATOR_CA_CERT, OPERATOR_CA_KEY, RECEIPT_KEY, write_private
from gateway.errors import ConfigError
from protocol.errors import CertificateError
from protocol.pki import (
    CertificateAuthority,
    certificate_der,
    certificate_pem,
    load_private_key_pem,
    make_ca,
    new_key,
    private_key_pem,
    subject_name,
)
from protocol.signing import public_key_bytes

VENDING_KEY = "vending.key"
VENDING_SECRET_SIZE = 32
_CA_YEARS = 20
_DEVICE_CERT_YEARS = 10


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    operator_ca: CertificateAuthority
    receipt_key: ec.EllipticCurvePrivateKey
    vending_secret: bytes  # never leaves the gateway; prepaid keys are derived from it

    @property
    def receipt_public_pem(self) -> str:
        return (
            self.receipt_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def receipt_key_id(self) -> str:
        return key_id(self.receipt_key.public_key())

    @property
    def operator_ca_pem(self) -> str:
        return certificate_pem(self.operator_ca.certificate).decode()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """First 16 hex digits of SHA-256 over the SEC1 point: a short name for a key."""
    return hashlib.sha256(public_key_bytes(public_key)).hexdigest()[:16]


def _make_operator_ca(gateway_id: str) -> CertificateAuthority:
    name = subject_name(f"TVPay operator CA {gateway_id}", organization="TVPay")
    return make_ca(name, days=365 * _CA_YEARS)


def ensure_keys(state_dir: Path, gateway_id: str) -> GatewayKeys:
    """Create the operator CA and receipt key when absent; load them either way."""
    ca_key_path, ca_cert_path = state_dir / OPERATOR_CA_KEY, state_dir / OPERATOR_CA_CERT
    if not ca_key_path.exists():
        ca = _make_operator_ca(gateway_id)
        write_private(ca_key_path, private_key_pem(ca.key))
        write_private(ca_cert_path, certificate_pem(ca.certificate))
    receipt_path = state_dir / RECEIPT_KEY
    if not receipt_path.exists():
        write_private(receipt_path, private_key_pem(new_key()))
    vending_path = state_dir / VENDING_KEY
    if not vending_path.exists():
        write_private(vending_path, secrets.token_bytes(VENDING_SECRET_SIZE))
    return load_keys(state_dir)


def _load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        return load_private_key_pem(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; run 'tvpay-gateway init' first") from None
    except CertificateError as exc:
        raise ConfigError(f"{path} {exc}; restore it from backup") from None


def load_keys(state_dir: Path) -> GatewayKeys:
    """Load the keys ``init`` made; ConfigError saying what to do when they are missing."""
    ca_key = _load_private(state_dir / OPERATOR_CA_KEY)
    try:
        ca_cert = x509.load_pem_x509_certificate((state_dir / OPERATOR_CA_CERT).read_bytes())
    except (FileNotFoundError, ValueError):
        raise ConfigError(
            f"{state_dir / OPERATOR_CA_CERT} is missing or damaged; restore it from backup"
        ) from None
    return GatewayKeys(
        CertificateAuthority(ca_key, ca_cert),
        _load_private(state_dir / RECEIPT_KEY),
        _load_vending_secret(state_dir / VENDING_KEY),
    )


def _load_vending_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing; run 'tvpay-gateway init' (it adds missing keys and keeps the "
            "others)"
        ) from None
    if len(secret) != VENDING_SECRET_SIZE:
        raise ConfigError(f"{path} is not {VENDING_SECRET_SIZE} bytes; restore it from backup")
    return secret


def issue_device_certificate(
    keys: GatewayKeys, dongle_id: str, household_no: str, public_key: ec.EllipticCurvePublicKey
) -> bytes:
    """DER certificate binding a dongle's serial, payment key and household (docs/gateway.md)."""
    household = x509.UniformResourceIdentifier(f"urn:tvpay:household:{household_no}")
    cert = keys.operator_ca.issue(
        subject_name(dongle_id, organization="TVPay", serial=dongle_id),
        public_key,
        days=365 * _DEVICE_CERT_YEARS,
        extensions=[(x509.SubjectAlternativeName([household]), False)],
    )
    return certificate_der(cert)
