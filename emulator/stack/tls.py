"""Locally generated TLS material: a private CA and a server certificate for 127.0.0.1.

The gateway serves HTTPS with the server certificate; the TV app and the staff tool trust only the
CA file. Files are reused when a kept state directory already has valid ones, so a TV app that
pinned the CA keeps working across runs. The certificates are built by ``protocol.pki``, like
every other certificate of the project.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from emulator.files import write_private
from protocol import pki
from protocol.errors import CertificateError

_CA_DAYS = 3650
_SERVER_DAYS = 825
# Renew the server certificate well before it expires so a kept state dir never serves a dead one.
_RENEW_BEFORE = datetime.timedelta(days=30)
_SERVER_EXTENSIONS: tuple[pki.Extension, ...] = (
    (
        x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ),
        False,
    ),
    (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
)


class TlsError(Exception):
    """The TLS files in the state directory are unusable."""


@dataclass(frozen=True)
class TlsMaterial:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _still_valid(path: Path, now: datetime.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - _RENEW_BEFORE > now


def _load_ca(cert_path: Path, key_path: Path) -> pki.CertificateAuthority:
    try:
        key = pki.load_private_key_pem(key_path.read_bytes())
    except CertificateError as exc:
        raise TlsError(
            f"the emulator CA key {key_path} {exc}: delete {key_path.parent} and start again"
        ) from exc
    # _still_valid has parsed the certificate already.
    return pki.CertificateAuthority(key, pki.load_pem_certificates(cert_path.read_bytes())[0])


def ensure_tls(directory: Path) -> TlsMaterial:
    """Create (or reuse) the CA and the 127.0.0.1 server certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    material = TlsMaterial(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
    )
    ca_key_path = directory / "ca-key.pem"
    now = datetime.datetime.now(datetime.UTC)
    if _still_valid(material.ca_cert, now) and ca_key_path.exists():
        ca = _load_ca(material.ca_cert, ca_key_path)
    else:
        name = pki.subject_name("TVPay emulator local CA", organization="TVPay emulator")
        ca = pki.make_ca(name, days=_CA_DAYS, now=now)
        write_private(ca_key_path, pki.private_key_pem(ca.key))
        write_private(material.ca_cert, pki.certificate_pem(ca.certificate))
        material.server_cert.unlink(missing_ok=True)
    if not (_still_valid(material.server_cert, now) and material.server_key.exists()):
        key = pki.new_key()
        cert = ca.issue(
            pki.subject_name("127.0.0.1"),
            key.public_key(),
            days=_SERVER_DAYS,
            now=now,
            extensions=_SERVER_EXTENSIONS,
        )
        write_private(material.server_key, pki.private_key_pem(key))
        write_private(material.server_cert, pki.certificate_pem(cert))
    return material
