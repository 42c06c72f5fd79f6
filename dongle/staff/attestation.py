"""Is this dongle genuine? Check an ATTEST answer against the trusted manufacturer CAs.

The dongle answers ATTEST(nonce) with its attestation certificate chain (leaf first) and an ES256
signature by the factory attestation key over ProvisioningAttestation (docs/protocol.md §5.3).
We accept it only when every certificate is well-formed (protocol.pki.parse_certificate), the
chain ends at a CA we were configured with, every certificate is in its validity period, the leaf
names the dongle's serial, and the signature covers our nonce; anything else is NotGenuine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from dongle.client import DaemonClient
from dongle.staff.errors import ConfigError, DongleProblem, NotGenuine
from protocol import pki
from protocol.errors import AttestationError, CertificateError
from protocol.pin import DongleKey


def attestation_from_results(
    serial: str, nonce: bytes, results: Mapping[str, Any]
) -> pki.Attestation:
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
    return pki.Attestation(serial, fields[2], fields[0], nonce, fields[1], tuple(certs))


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
            cas += pki.load_pem_cas(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"cannot read the manufacturer CA {path}: {exc.strerror}; check --manufacturer-ca"
            ) from None
        except CertificateError as exc:
            raise ConfigError(
                f"{path} {exc}: point --manufacturer-ca at the manufacturer CA certificate"
            ) from None
    if not cas:
        raise ConfigError(
            "no manufacturer CA is configured: pass --manufacturer-ca FILE (or set "
            "TVPAY_MANUFACTURER_CA, or [attestation] manufacturer_ca in staff.toml)"
        )
    return cas


def verify_attestation(attestation: pki.Attestation, cas: list[x509.Certificate]) -> Genuine:
    """Check the chain up to one of ``cas`` and the signature over the nonce; NotGenuine if not."""
    try:
        anchor = pki.verify_attestation(attestation, cas)
    except AttestationError as exc:
        raise NotGenuine(str(exc)) from None
    return Genuine(
        attestation.dongle_id,
        attestation.key_rev,
        bool(attestation.public_key),
        pki.common_name(anchor),
    )


def attested_key(client: DaemonClient, serial: str, cas: list[x509.Certificate]) -> DongleKey:
    """The dongle's payment key as its factory attestation vouches for it (fresh nonce, chain to
    ``cas``): the key PIN commands check the key agreement against without trusting the daemon."""
    nonce = os.urandom(32)
    attestation = attestation_from_results(serial, nonce, client.attest(nonce, serial))
    verify_attestation(attestation, cas)
    if not attestation.public_key:
        raise DongleProblem(f"dongle {serial} has no payment key yet: provision it first")
    return DongleKey(serial, attestation.key_rev, attestation.public_key)
