"""The gateway's side of a dongle's factory attestation: the configured manufacturer CAs, and
protocol.pki's check turned into an ``attestation_invalid`` refusal (docs/protocol.md §5.3)."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from gateway.errors import ConfigError, Unprocessable
from protocol import pki
from protocol.errors import AttestationError, CertificateError


def load_manufacturer_cas(paths: tuple[Path, ...]) -> tuple[x509.Certificate, ...]:
    """Every certificate in the configured PEM files; ConfigError naming a bad file."""
    cas: list[x509.Certificate] = []
    for path in paths:
        try:
            cas.extend(pki.load_pem_cas(path.read_bytes()))
        except FileNotFoundError:
            raise ConfigError(
                f"manufacturer CA file {path} does not exist; fix manufacturer_ca in gateway.toml"
            ) from None
        except CertificateError as exc:
            raise ConfigError(f"manufacturer CA file {path} {exc}") from None
    return tuple(cas)


def verify_attestation(att: pki.Attestation, trusted: tuple[x509.Certificate, ...]) -> None:
    """Raise ``attestation_invalid`` unless the chain and signature check out."""
    if not trusted:
        raise _refused(
            "no manufacturer CA is configured on the gateway (run init --manufacturer-ca) "
            "[no_trusted_ca]"
        )
    try:
        pki.verify_attestation(att, trusted)
    except AttestationError as exc:
        # Every certificate fault arrives here typed (pki.parse_certificate): a 422 naming the
        # failed check, never a 500, whatever bytes the dongle sent.
        raise _refused(f"{exc.reason} [{exc.code}]") from None


def _refused(why: str) -> Unprocessable:
    return Unprocessable(
        f"The dongle's attestation was refused: {why}. Check the dongle is genuine and retry "
        "from a fresh nonce.",
        code="attestation_invalid",
    )
