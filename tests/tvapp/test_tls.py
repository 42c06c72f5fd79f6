"""The gateway client trusts the configured CA and nothing else, whatever the environment says.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace a session's own CA setting; both are
commonly set (CI images, distributions). The real gateway serves HTTPS here with a certificate
of a test CA, and the environment names another CA's bundle (or the right one, to a client
configured with the wrong one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from protocol.pki import certificate_pem, make_ca, new_key, private_key_pem, subject_name
from tests.tvapp.world import World, start_gateway
from tvapp.services.errors import GatewayRefused
from tvapp.services.gateway import Gateway

CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class TlsGateway:
    url: str
    ca_file: Path
    other_ca_file: Path


@pytest.fixture(scope="module")
def tls_gateway(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsGateway]:
    tmp = tmp_path_factory.mktemp("tls")
    ca = make_ca(subject_name("tvapp test gateway CA"), days=1)
    other = make_ca(subject_name("some other CA"), days=1)
    key = new_key()
    cert = ca.issue(
        subject_name("127.0.0.1"),
        key.public_key(),
        days=1,
        extensions=[
            (
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False,
            ),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    files = {
        "ca.pem": certificate_pem(ca.certificate),
        "other-ca.pem": certificate_pem(other.certificate),
        "server.pem": certificate_pem(cert),
        "server-key.pem": private_key_pem(key),
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    # A second gateway process on the world's database, serving HTTPS.
    proc, url = start_gateway(
        world.gateway_state,
        "--tls-cert",
        str(tmp / "server.pem"),
        "--tls-key",
        str(tmp / "server-key.pem"),
    )
    assert url.startswith("https://")
    yield TlsGateway(url, tmp / "ca.pem", tmp / "other-ca.pem")
    proc.terminate()
    proc.wait(timeout=10)


def _point_env_at(monkeypatch: pytest.MonkeyPatch, bundle: Path) -> None:
    for name in CA_ENV:
        monkeypatch.setenv(name, str(bundle))


def test_the_configured_ca_is_used_when_the_environment_names_another_bundle(
    tls_gateway: TlsGateway, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_env_at(monkeypatch, tls_gateway.other_ca_file)
    gateway = Gateway(tls_gateway.url, ca_file=str(tls_gateway.ca_file))
    try:
        challenge, _gateway_id, _timestamp = gateway.session_challenge(world.serial)
    finally:
        gateway.close()
    assert len(challenge) > 0


def test_the_environment_cannot_make_an_untrusted_gateway_trusted(
    tls_gateway: TlsGateway, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_env_at(monkeypatch, tls_gateway.ca_file)
    gateway = Gateway(tls_gateway.url, ca_file=str(tls_gateway.other_ca_file))
    try:
        with pytest.raises(GatewayRefused) as refused:
            gateway.session_challenge(world.serial)
    finally:
        gateway.close()
    assert refused.value.code == "tls_error"
