"""The gateway's own keys: the operator CA that certifies dongles and the receipt signing key.

Both are P-256, kept as PEM files (0600) in the state directory. ``init`` creates them once;
re-running it keeps them, because replacing either would invalidate every issued certificate or
receipt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import OPERATOR_CA_CERT, OPERATOR_CA_KEY, RECEIPT_KEY, write_private
from gateway.errors import ConfigError
from protocol.signing import public_key_bytes

_CA_YEARS = 20
_DEVICE_CERT_YEARS = 10


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    operator_ca_key: ec.EllipticCurvePrivateKey
    operator_ca_cert: x509.Certificate
    receipt_key: ec.EllipticCurvePrivateKey

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
        return self.operator_ca_cert.public_bytes(serialization.Encoding.PEM).decode()


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """First 16 hex digits of SHA-256 over the SEC1 point: a short name for a key."""
    return hashlib.sha256(public_key_bytes(public_key)).hexdigest()[:16]


def _pem_private(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_operator_ca(gateway_id: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TVPay"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"TVPay operator CA {gateway_id}"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * _CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def ensure_keys(state_dir: Path, gateway_id: str) -> GatewayKeys:
    """Create the operator CA and receipt key when absent; load them either way."""
    ca_key_path, ca_cert_path = state_dir / OPERATOR_CA_KEY, state_dir / OPERATOR_CA_CERT
    if not ca_key_path.exists():
        key, cert = _make_operator_ca(gateway_id)
        write_private(ca_key_path, _pem_private(key))
        write_private(ca_cert_path, cert.public_bytes(serialization.Encoding.PEM))
    receipt_path = state_dir / RECEIPT_KEY
    if not receipt_path.exists():
        write_private(receipt_path, _pem_private(ec.generate_private_key(ec.SECP256R1())))
    return load_keys(state_dir)


def _load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; run 'tvpay-gateway init' first") from None
    except ValueError:
        raise ConfigError(f"{path} is not a PEM private key; restore it from backup") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{path} must hold a P-256 key")
    return key


def load_keys(state_dir: Path) -> GatewayKeys:
    """Load the keys ``init`` made; ConfigError saying what to do when they are missing."""
    ca_key = _load_private(state_dir / OPERATOR_CA_KEY)
    try:
        ca_cert = x509.load_pem_x509_certificate((state_dir / OPERATOR_CA_CERT).read_bytes())
    except (FileNotFoundError, ValueError):
        raise ConfigError(
            f"{state_dir / OPERATOR_CA_CERT} is missing or damaged; restore it from backup"
        ) from None
    return GatewayKeys(ca_key, ca_cert, _load_private(state_dir / RECEIPT_KEY))


def issue_device_certificate(
    keys: GatewayKeys, dongle_id: str, household_no: str, public_key: ec.EllipticCurvePublicKey
) -> bytes:
    """DER certificate binding a dongle's serial, payment key and household (docs/gateway.md)."""
    now = datetime.now(UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TVPay"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, dongle_id),
            x509.NameAttribute(NameOID.COMMON_NAME, dongle_id),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(keys.operator_ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * _DEVICE_CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:tvpay:household:{household_no}")]
            ),
            critical=False,
        )
        .sign(keys.operator_ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)
