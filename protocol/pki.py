"""TVPay's X.509: certificate authorities, the certificates they issue, and the factory attestation.

Two CAs certify dongles (docs/protocol.md §5.3 and docs/gateway.md): the manufacturer CA issues
each dongle's attestation certificate at the factory; the gateway's operator CA issues the device
certificate binding a registered payment key to a household. Both are P-256 / ECDSA-SHA256, and
every CA and certificate of the project is built here, the same way.

Pure functions over ``cryptography`` objects: callers read and write the files and pass bytes in.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocol.errors import AttestationError, CertificateError, PayloadError, UntrustedManufacturer
from protocol.signing import Algorithm, ProvisioningAttestation, verify

# Certificates start a little in the past so a peer whose clock runs behind still accepts them.
BACKDATE = timedelta(minutes=5)
MAX_ATTESTATION_CHAIN = 4

Extension = tuple[x509.ExtensionType, bool]  # the extension and whether it is critical


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def issue(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        *,
        days: int,
        now: datetime | None = None,
        backdate: timedelta = BACKDATE,
        extensions: Sequence[Extension] = (),
    ) -> x509.Certificate:
        """An end-entity certificate for ``public_key``, signed by this CA."""
        return _build(
            subject,
            public_key,
            self.certificate.subject,
            self.key,
            _validity(days, now, backdate),
            [
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (_key_usage(cert_sign=False), True),
                (x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False),
                *extensions,
            ],
        )


@dataclass(frozen=True, slots=True)
class Attestation:
    """A dongle's answer to ATTEST(nonce), as received: nothing in it is trusted yet."""

    dongle_id: str
    key_rev: int
    public_key: bytes  # the payment key, or b"" before one exists
    nonce: bytes
    signature: bytes
    certificates: tuple[bytes, ...]  # DER, attestation certificate first


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def subject_name(
    common_name: str, *, organization: str | None = None, serial: str | None = None
) -> x509.Name:
    """O (optional), SERIALNUMBER (optional, a dongle id) and CN, in that order."""
    attributes = []
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if serial is not None:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def make_ca(
    subject: x509.Name,
    *,
    days: int,
    issuer: CertificateAuthority | None = None,
    now: datetime | None = None,
    backdate: timedelta = BACKDATE,
) -> CertificateAuthority:
    """A new CA key and certificate: self-signed as a root, or an intermediate of ``issuer``."""
    key = new_key()
    extensions: list[Extension] = [
        (x509.BasicConstraints(ca=True, path_length=0 if issuer is None else None), True),
        (_key_usage(cert_sign=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
    ]
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_name, signing_key = issuer.certificate.subject, issuer.key
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        extensions.append((aki, False))
    cert = _build(
        subject,
        key.public_key(),
        issuer_name,
        signing_key,
        _validity(days, now, backdate),
        extensions,
    )
    return CertificateAuthority(key, cert)


def _build(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_name: x509.Name,
    signing_key: ec.EllipticCurvePrivateKey,
    validity: tuple[datetime, datetime],
    extensions: Sequence[Extension],
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def _validity(days: int, now: datetime | None, backdate: timedelta) -> tuple[datetime, datetime]:
    start = now or datetime.now(UTC)
    return start - backdate, start + timedelta(days=days)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
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


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: the file holding it must be 0600."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key_pem(data: bytes) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from unencrypted PEM; CertificateError when it is anything else."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CertificateError("is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise CertificateError("holds a key that is not P-256")
    return key


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; CertificateError when there is none."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError("holds no PEM certificate") from None


def common_name(cert: x509.Certificate) -> str:
    """The subject's CN, or the whole subject when it has none: a name to show a person."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def verify_attestation(
    attestation: Attestation,
    trusted: Sequence[x509.Certificate],
    now: datetime | None = None,
) -> x509.Certificate:
    """Check a dongle's attestation; return the trusted CA its chain ends at.

    Accepted only when: 1..MAX_ATTESTATION_CHAIN DER certificates, each (and the anchor) in its
    validity period, each issued by the next and every issuer a CA, the last issued by one of
    ``trusted``, the leaf's SERIALNUMBER (if any) naming the dongle, a P-256 leaf key, and its
    signature over ProvisioningAttestation with our nonce. AttestationError otherwise.
    """
    serial = attestation.dongle_id
    if not trusted:
        raise AttestationError(serial, "no manufacturer CA is configured to check it against")
    if not 1 <= len(attestation.certificates) <= MAX_ATTESTATION_CHAIN:
        raise AttestationError(
            serial,
            f"it sent {len(attestation.certificates)} certificates, "
            f"1..{MAX_ATTESTATION_CHAIN} are expected",
        )
    try:
        chain = [x509.load_der_x509_certificate(der) for der in attestation.certificates]
    except ValueError:
        raise AttestationError(serial, "its attestation certificate cannot be parsed") from None
    now = now or datetime.now(UTC)
    for position, cert in enumerate(chain):
        _check_validity(serial, cert, now, "attestation" if position == 0 else "intermediate")
    for child, parent in itertools.pairwise(chain):
        if not _issued_by(child, parent):
            raise AttestationError(serial, "its attestation chain is broken")
        if not _is_ca(parent):
            raise AttestationError(serial, "an intermediate certificate is not a CA")
    anchor = next((ca for ca in trusted if _issued_by(chain[-1], ca)), None)
    if anchor is None:
        raise UntrustedManufacturer(serial, chain[-1].issuer.rfc4514_string())
    _check_validity(serial, anchor, now, "manufacturer CA")
    leaf = chain[0]
    names = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if names and names[0].value != serial:
        raise AttestationError(serial, f"its attestation certificate belongs to {names[0].value}")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise AttestationError(serial, "its attestation key is not a P-256 key")
    try:
        payload = ProvisioningAttestation(
            alg=Algorithm.ES256,
            dongle_id=serial,
            key_rev=attestation.key_rev,
            public_key=attestation.public_key,
            nonce=attestation.nonce,
        )
    except PayloadError as exc:
        raise AttestationError(serial, f"its attestation is malformed ({exc})") from None
    if not verify(key, payload.signed_bytes(), attestation.signature):
        raise AttestationError(serial, "its attestation signature does not verify")
    return anchor


def _check_validity(serial: str, cert: x509.Certificate, now: datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise AttestationError(serial, f"the {what} certificate is outside its validity period")


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
