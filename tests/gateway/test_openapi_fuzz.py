"""Schemathesis over /openapi.json: generated requests (bounded) never get a 5xx, and every
answer matches the published schema. Staff paths get a staff token, the others a device token,
so the fuzzer reaches past authentication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.gateway.conftest import make_context, serve_in_thread
from tests.gateway.helpers import GatewayUnderTest, Manufacturer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_gateway(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    manufacturer: Manufacturer,
) -> Iterator[GatewayUnderTest]:
    ctx = make_context(request, request.param, tmp_path_factory.mktemp("fuzz"), manufacturer)
    url, server, thread = serve_in_thread(ctx)
    gw = GatewayUnderTest.setup(url, ctx, manufacturer)
    try:
        yield gw
    finally:
        server.should_exit = True
        thread.join(10)
        ctx.db.engine.dispose()


@pytest.fixture(scope="module")
def device_token(fuzz_gateway: GatewayUnderTest) -> str:
    _dongle, token, _bills = fuzz_gateway.paying_household()
    return token


def _fuzz(operation: Any, token: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            # Business refusals of well-formed data (amount_mismatch, attestation_invalid) are
            # 422 by design; every other check, 5xx and schema conformance included, runs.
            excluded_checks=[positive_data_acceptance],
        )

    check()


def test_no_server_errors_and_schema_conformance(
    fuzz_gateway: GatewayUnderTest, device_token: str
) -> None:
    schema = schemathesis.openapi.from_url(fuzz_gateway.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        staff_path = operation.path.startswith("/api/v1/staff")
        _fuzz(operation, fuzz_gateway.staff_token if staff_path else device_token)
