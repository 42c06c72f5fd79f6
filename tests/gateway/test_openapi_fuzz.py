"""Schemathesis over /openapi.json: generated requests (bounded) never get a 5xx, and every
answer matches the published schema. Staff paths get a staff token, the others a device token,
so the fuzzer reaches past authentication. Besides one operation at a time, a state machine
follows OpenAPI links (bind an account → its bills → create a payment → authorize it; create a
household → read it; list dongles → read one), so generated sequences reach states one request
cannot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway import staff
from gateway.db.models import Base
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


# Only positive data acceptance is left out: business refusals of well-formed data
# (amount_mismatch, attestation_invalid) are 422 by design; every other check, 5xx and schema
# conformance included, runs.
EXCLUDED = [positive_data_acceptance]
SETTINGS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def _fuzz(operation: Any, token: str) -> None:
    @given(case=operation.as_strategy())
    @SETTINGS
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, excluded_checks=EXCLUDED
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


def _link(operation_id: str, **parameters: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


def _operation_ids(raw: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in raw["paths"].items()
        for method, operation in item.items()
    }


def _with_links(raw: dict[str, Any]) -> dict[str, Any]:
    """The published schema plus the links a client follows between household and staff calls."""
    ids = _operation_ids(raw)
    base = "/api/v1"
    account = "$response.body#/account_id"
    links = {
        ("POST", f"{base}/accounts", "201"): {
            "bills": _link(ids["GET", f"{base}/accounts/{{account_id}}/bills"], account_id=account),
            "usage": _link(ids["GET", f"{base}/accounts/{{account_id}}/usage"], account_id=account),
            "unbind": _link(ids["DELETE", f"{base}/accounts/{{account_id}}"], account_id=account),
        },
        ("GET", f"{base}/accounts", "200"): {
            "bills": _link(
                ids["GET", f"{base}/accounts/{{account_id}}/bills"],
                account_id="$response.body#/accounts/0/account_id",
            ),
        },
        ("GET", f"{base}/bills", "200"): {
            "pay": {
                "operationId": ids["POST", f"{base}/payments"],
                # The bill id as the key: following the link again replays the first answer.
                "parameters": {"header.Idempotency-Key": "$response.body#/bills/0/bill_id"},
                "requestBody": {
                    "bill_id": "$response.body#/bills/0/bill_id",
                    "amount_fen": "$response.body#/bills/0/amount_fen",
                    "currency": "$response.body#/bills/0/currency",
                },
            },
        },
        ("POST", f"{base}/payments", "201"): {
            "read": _link(
                ids["GET", f"{base}/payments/{{payment_id}}"],
                payment_id="$response.body#/payment_id",
            ),
            "authorize": _link(
                ids["POST", f"{base}/payments/{{payment_id}}/authorize"],
                payment_id="$response.body#/payment_id",
            ),
        },
        ("POST", f"{base}/staff/households", "201"): {
            "read": _link(
                ids["GET", f"{base}/staff/households/{{household_no}}"],
                household_no="$response.body#/household_no",
            ),
        },
        ("GET", f"{base}/staff/dongles", "200"): {
            "read": _link(
                ids["GET", f"{base}/staff/dongles/{{dongle_id}}"],
                dongle_id="$response.body#/dongles/0/dongle_id",
            ),
        },
    }
    for (method, path, status), targets in links.items():
        response = raw["paths"][path][method.lower()]["responses"][status]
        response["links"] = targets
    return raw


def _start_over(gw: GatewayUnderTest) -> tuple[str, str]:
    """Empty every table and seed a staff member and a paying household: (staff, device) tokens.

    Each sequence must start from the same gateway: Hypothesis replays and extends earlier
    sequences, and a rule is enabled by what earlier responses returned, so state left by one
    sequence (a bound account, a household paused by the bind limiter) would make the next one
    draw differently and fail as "inconsistent data generation" instead of testing anything.
    """

    def wipe(s: Any) -> None:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())

    gw.ctx.db.write(wipe)
    staff_token = gw.ctx.db.write(lambda s: staff.add_staff(s, "fuzz"))
    gw.staff_token = staff_token
    _dongle, device_token, _bills = gw.paying_household()
    return staff_token, device_token


def test_stateful_sequences_never_break_the_gateway(fuzz_gateway: GatewayUnderTest) -> None:
    raw = requests.get(fuzz_gateway.url + "/openapi.json", timeout=30).json()
    # Revoking or rebinding the household's own dongle (its id is in GET /staff/dongles) would
    # end the device session every later step needs; those two are fuzzed one at a time above.
    schema = schemathesis.openapi.from_dict(_with_links(raw)).exclude(
        path_regex=r"/(revoke|rebind)$"
    )
    schema.config.update(base_url=fuzz_gateway.url)
    # Well-formed requests only, as above: the sequences are what is new here.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.staff_token, self.device_token = _start_over(fuzz_gateway)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            staff_path = case.operation.path.startswith("/api/v1/staff")
            token = self.staff_token if staff_path else self.device_token
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(response, excluded_checks=EXCLUDED)

    Sequences.run(settings=settings(SETTINGS, max_examples=15, stateful_step_count=6))
