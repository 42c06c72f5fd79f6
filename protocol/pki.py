"""TVPay's X.509: certificate authorities, the certificates they issue, and the factory attestation.

Two CAs certify dongles (docs/protocol.md §5.3 and docs/gateway.md): the manufacturer CA issues
each dongle's attestation certificate at the factory; the gateway's operator CA issues the device
certificate binding a registered payment key to a household. Both are P-256 / ECDSA-SHA256, and
every CA and certificate of the project is built here, the same way.

Pure functions over ``cryptography`` objects: callers read and write the files and pass bytes in.
Certificate bytes from outside are read only through ``parse_certificate``, which turns every
way they can be malformed into a MalformedCertificate with a code.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from protocol.errors import (
    AttestationError,
    CertificateError,
    MalformedCertificate,
    PayloadError,
    UntrustedManufacturer,
)

if TYPE_CHECKING:  # the box runs Debian 12's cryptography 38, which has no PublicKeyTypes
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from protocol.signing import Algorithm, ProvisioningAttestation, verify

# Certificates start a little in the past so a peer whose clock runs behind still accepts them.
BACKDATE = timedelta(minutes=5)
MAX_ATTESTATION_CHAIN = 4
# Ours are under 1 KiB; the cap keeps a hostile certificate from costing more than a look.
MAX_CERTIFICATE_BYTES = 4096
# The extensions this project reads. A critical extension outside this set changes what the
# certificate means in a way we would ignore, so such a certificate is refused (RFC 5280 4.2).
UNDERSTOOD_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)

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
    """Every certificate in a PEM bundle, each checked by ``parse_certificate``; CertificateError
    (MalformedCertificate for a bad one) when there is none or one breaks the profile."""
    try:
        bundle = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError("holds no PEM certificate") from None
    return [parse_certificate(certificate_der(cert)) for cert in bundle]


def load_pem_cas(data: bytes) -> list[x509.Certificate]:
    """Trust anchors (manufacturer CAs) from a PEM bundle: like ``load_pem_certificates``, and
    MalformedCertificate ``not_a_ca`` for one that may not issue certificates."""
    cas = load_pem_certificates(data)
    for cert in cas:
        if not is_ca(cert):
            raise MalformedCertificate(
                "not_a_ca",
                f"is not a CA ('{_shown(common_name(cert))}' may not issue certificates)",
            )
    return cas


def parse_certificate(der: bytes) -> x509.Certificate:
    """The one way the project reads certificate bytes it got from outside (a dongle, the
    gateway, a configured file).

    ``cryptography`` parses lazily: a duplicate extension surfaces only when ``.extensions`` is
    read, an unsupported key only in ``.public_key()``, each as its own exception type. Every
    part is read here, once, so a malformed certificate fails in this function as a
    MalformedCertificate with a code, and reading the returned certificate again cannot fail.
    The profile checked is the one every TVPay certificate follows (see ``_check_profile``).
    """
    if not isinstance(der, bytes) or not der:
        raise MalformedCertificate("der_invalid", "is empty")
    if len(der) > MAX_CERTIFICATE_BYTES:
        raise MalformedCertificate(
            "too_large", f"is {len(der)} bytes long, more than {MAX_CERTIFICATE_BYTES}"
        )
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        validity = validity_utc(cert)
        signature_algorithm = cert.signature_algorithm_oid
    except (ValueError, TypeError, x509.InvalidVersion):
        raise MalformedCertificate("der_invalid", "cannot be parsed as DER X.509") from None
    try:
        extensions = cert.extensions
    except x509.DuplicateExtension as exc:
        raise MalformedCertificate(
            "duplicate_extension", f"has the extension {exc.oid.dotted_string} twice"
        ) from None
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType):
        raise MalformedCertificate(
            "extension_invalid", "has an extension that cannot be parsed"
        ) from None
    try:
        key = cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MalformedCertificate(
            "key_unsupported", "certifies a key of an unknown kind"
        ) from None
    _check_profile(key, signature_algorithm, validity, extensions)
    return cert


def is_ca(cert: x509.Certificate) -> bool:
    """Whether a certificate ``parse_certificate`` accepted may issue certificates."""
    return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)


def _check_profile(
    key: PublicKeyTypes,
    signature_algorithm: x509.ObjectIdentifier,
    validity: tuple[datetime, datetime],
    extensions: x509.Extensions,
) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise MalformedCertificate(
            "key_unsupported", f"certifies {_key_kind(key)} key, where only P-256 is accepted"
        )
    if signature_algorithm != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise MalformedCertificate(
            "signature_unsupported",
            f"is signed with {signature_algorithm.dotted_string}, not ECDSA-SHA256",
        )
    if validity[0] > validity[1]:
        raise MalformedCertificate(
            "validity_inverted", "ends its validity period before it begins it"
        )
    for extension in extensions:
        if extension.critical and extension.oid not in UNDERSTOOD_EXTENSIONS:
            raise MalformedCertificate(
                "unknown_critical_extension",
                f"has a critical extension {extension.oid.dotted_string} that is not understood",
            )
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise MalformedCertificate(
            "basic_constraints_missing", "has no basicConstraints extension"
        ) from None
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise MalformedCertificate("key_usage_missing", "has no keyUsage extension") from None
    # A CA must be allowed to sign certificates; a leaf signs with digitalSignature and must never
    # certify: anything else is not a certificate this project's PKI issues or trusts.
    if constraints.ca and not usage.key_cert_sign:
        raise MalformedCertificate(
            "key_usage_invalid", "is a CA whose keyUsage does not allow signing certificates"
        )
    if not constraints.ca and (usage.key_cert_sign or not usage.digital_signature):
        raise MalformedCertificate(
            "key_usage_invalid",
            "is not a CA but its keyUsage does not fit a signing key (digitalSignature only)",
        )


def _key_kind(key: PublicKeyTypes) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA-{key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return f"an {type(key).__name__.removesuffix('PublicKey')}"
    return f"a {type(key).__name__.removesuffix('PublicKey')}"


def _shown(text: str, limit: int = 80) -> str:
    """Text taken from a certificate, made safe to put in a one-line message: printable
    characters only, at most ``limit`` of them."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


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

    Every certificate sent is untrusted input. Accepted only when: 1..MAX_ATTESTATION_CHAIN
    certificates, each passing ``parse_certificate`` and each named once (no loop), each (and
    the anchor) in its validity period, a leaf that is no CA, each issued by the next and every
    issuer a CA, the last issued by one of ``trusted`` (a CA), the leaf's SERIALNUMBER (if any)
    naming the dongle, and the leaf key's signature over ProvisioningAttestation with our nonce.
    AttestationError (with a ``code``) otherwise, never another exception.
    """
    serial = attestation.dongle_id
    if not trusted:
        raise AttestationError(
            serial, "no manufacturer CA is configured to check it against", code="no_trusted_ca"
        )
    count = len(attestation.certificates)
    if not 1 <= count <= MAX_ATTESTATION_CHAIN:
        raise AttestationError(
            serial,
            f"it sent {count} certificates, 1..{MAX_ATTESTATION_CHAIN} are expected",
            code="chain_length",
        )
    chain = [
        _chain_member(serial, der, position)
        for position, der in enumerate(attestation.certificates)
    ]
    now = now or datetime.now(UTC)
    _check_no_loop(serial, chain)
    for position, cert in enumerate(chain):
        _check_validity(serial, cert, now, _role(position))
    if is_ca(chain[0]):
        raise AttestationError(
            serial,
            "its attestation certificate is a CA certificate, not a dongle's",
            code="leaf_is_ca",
        )
    for child, parent in itertools.pairwise(chain):
        if not is_ca(parent):
            raise AttestationError(
                serial, "an intermediate certificate is not a CA", code="issuer_not_ca"
            )
        if not _issued_by(child, parent):
            raise AttestationError(serial, "its attestation chain is broken", code="chain_broken")
    anchor = next((ca for ca in _anchors(trusted) if _issued_by(chain[-1], ca)), None)
    if anchor is None:
        raise UntrustedManufacturer(serial, _shown(chain[-1].issuer.rfc4514_string()))
    _check_validity(serial, anchor, now, "manufacturer CA")
    leaf = chain[0]
    names = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if names and names[0].value != serial:
        raise AttestationError(
            serial,
            f"its attestation certificate belongs to {_shown(str(names[0].value))}",
            code="serial_mismatch",
        )
    try:
        payload = ProvisioningAttestation(
            alg=Algorithm.ES256,
            dongle_id=serial,
            key_rev=attestation.key_rev,
            public_key=attestation.public_key,
            nonce=attestation.nonce,
        )
    except PayloadError as exc:
        raise AttestationError(
            serial, f"its attestation is malformed ({exc})", code="attestation_malformed"
        ) from None
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)  # parse_certificate accepts only P-256
    if not verify(key, payload.signed_bytes(), attestation.signature):
        raise AttestationError(
            serial, "its attestation signature does not verify", code="signature_invalid"
        )
    return anchor


def _role(position: int) -> str:
    return "attestation" if position == 0 else "intermediate"


def _chain_member(serial: str, der: bytes, position: int) -> x509.Certificate:
    try:
        return parse_certificate(der)
    except MalformedCertificate as exc:
        raise AttestationError(
            serial, f"its {_role(position)} certificate {exc.reason}", code=exc.code
        ) from None


def _anchors(trusted: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The configured CAs that can anchor a chain: callers load them with
    ``load_pem_certificates``, but a certificate object handed in directly is checked again."""
    anchors = []
    for ca in trusted:
        try:
            checked = parse_certificate(certificate_der(ca))
        except MalformedCertificate:
            continue  # a configured file that breaks the profile anchors nothing
        if is_ca(checked):
            anchors.append(checked)
    return anchors


def _check_no_loop(serial: str, chain: list[x509.Certificate]) -> None:
    """A chain names each certificate once: a repeated subject means it loops back on itself."""
    seen: set[x509.Name] = set()
    for cert in chain:
        if cert.subject in seen:
            raise AttestationError(
                serial,
                f"its attestation chain loops: '{_shown(cert.subject.rfc4514_string())}' "
                "appears twice",
                code="chain_loop",
            )
        seen.add(cert.subject)


def validity_utc(cert: x509.Certificate) -> tuple[datetime, datetime]:
    """notBefore and notAfter as aware UTC times, on cryptography 38 (Debian 12, the box) too,
    which has only the naive ``not_valid_before``/``not_valid_after``."""
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return (
        cert.not_valid_before.replace(tzinfo=UTC),
        cert.not_valid_after.replace(tzinfo=UTC),
    )


def _check_validity(serial: str, cert: x509.Certificate, now: datetime, what: str) -> None:
    not_before, not_after = validity_utc(cert)
    if now < not_before:
        raise AttestationError(
            serial,
            f"the {what} certificate is outside its validity period (not valid before "
            f"{not_before:%Y-%m-%d %H:%M} UTC)",
            code="not_yet_valid",
        )
    if now > not_after:
        raise AttestationError(
            serial,
            f"the {what} certificate is outside its validity period (expired "
            f"{not_after:%Y-%m-%d %H:%M} UTC)",
            code="expired",
        )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    # Both passed parse_certificate, so both are P-256 keys and ECDSA-SHA256 signatures; checked
    # by hand because cryptography 38 (the box's) has no verify_directly_issued_by.
    parent_key = parent.public_key()
    if child.issuer != parent.subject or not isinstance(parent_key, ec.EllipticCurvePublicKey):
        return False
    try:
        parent_key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True
