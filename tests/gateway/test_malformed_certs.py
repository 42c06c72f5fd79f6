"""Malformed attestation chains over real HTTP: the staff endpoints that read a dongle's chain
answer 4xx with a code naming the failed check, never 500, and register nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.attestation import load_manufacturer_cas
from gateway.errors import ConfigError
from protocol import pki
from tests.fixtures.malformed_certs import CASES, Case, certificate
from tests.gateway.conftest import make_context, serve_in_thread
from tests.gateway.helpers import GatewayUnderTest, Manufacturer, TestDongle, b64, unb64

# The request schema already refuses more than MAX_ATTESTATION_CHAIN certificates, or one over
# MAX_CERTIFICATE_BYTES, before any is read: those two are protocol.pki's own tests.
READ_BY_THE_GATEWAY = [case for case in CASES if case.name not in {"too_long", "oversized"}]


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    manufacturer: Manufacturer,
) -> Iterator[GatewayUnderTest]:
    """One gateway (SQLite) for the whole table: certificate checks do not touch the database
    beyond the nonce, and a server per case would only slow the table down."""
    ctx = make_context(request, "sqlite", tmp_path_factory.mktemp("gw"), manufacturer)
    url, server, thread = serve_in_thread(ctx)
    try:
        yield GatewayUnderTest.setup(url, ctx, manufacturer)
    finally:
        server.should_exit = True
        thread.join(10)
        ctx.db.engine.dispose()


def malformed_attestation(gw: GatewayUnderTest, case: Case) -> tuple[TestDongle, dict]:
    """A dongle with a payment key whose factory got ``case`` wrong, attesting a fresh nonce."""
    dongle = gw.manufacturer.new_dongle()
    dongle.generate_key()
    assert dongle.attest_key is not None
    chain = case.build(gw.manufacturer.authority, dongle.attest_key.public_key(), dongle.dongle_id)
    nonce = unb64(gw.staff("POST", "/attestation-nonce", json={}).json()["nonce"])
    body = dongle.attest(nonce)
    body["certificates"] = [b64(der) for der in chain]
    return dongle, body


def assert_refused(response, case: Case) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "attestation_invalid"
    assert f"[{case.code}]" in error["message"]
    assert case.says in error["message"]


@pytest.mark.parametrize("case", READ_BY_THE_GATEWAY, ids=lambda c: c.name)
def test_verify_refuses_a_malformed_chain_with_its_code(gateway: GatewayUnderTest, case) -> None:
    _dongle, body = malformed_attestation(gateway, case)
    response = gateway.staff("POST", "/attestations/verify", json={"attestation": body})
    assert_refused(response, case)


@pytest.mark.parametrize("case", READ_BY_THE_GATEWAY, ids=lambda c: c.name)
def test_register_refuses_a_malformed_chain_and_records_nothing(
    gateway: GatewayUnderTest, case
) -> None:
    dongle, body = malformed_attestation(gateway, case)
    response = gateway.staff(
        "POST", "/dongles", json={"household_no": gateway.household(), "attestation": body}
    )
    assert_refused(response, case)
    assert gateway.staff("GET", f"/dongles/{dongle.dongle_id}").status_code == 404


def test_a_leaf_configured_as_manufacturer_ca_is_a_config_error(
    tmp_path: Path, manufacturer: Manufacturer
) -> None:
    leaf = certificate(manufacturer.authority, pki.new_key().public_key(), "TVP0000000001")
    path = tmp_path / "not-a-ca.pem"
    path.write_bytes(pki.certificate_pem(leaf))
    with pytest.raises(ConfigError, match=r"not-a-ca\.pem holds a certificate that is not a CA"):
        load_manufacturer_cas((path,))
