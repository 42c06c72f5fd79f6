"""Fixtures for the gateway tests: a throwaway PostgreSQL cluster, a test manufacturer CA, and a
real gateway served over HTTP on a free port, for each database backend."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import create_engine, text

from gateway.api.app import create_app
from gateway.config import GatewayConfig
from gateway.context import GatewayContext, build_context
from gateway.keys import ensure_keys
from tests.fixtures.bank import BankProcess, bank_process
from tests.gateway.helpers import GatewayUnderTest, Manufacturer, wait_until
from tests.gateway.mandate_world import MandateWorld
from tests.gateway.pgcluster import PostgresMissing, pg_cluster


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL cluster for this test session (loopback, free port), stopped at the end."""
    try:
        with pg_cluster() as url:
            yield url
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def fresh_database_url(request: pytest.FixtureRequest, backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'gateway.db'}"
    base = request.getfixturevalue("pg_url")
    name = "gw_" + uuid.uuid4().hex[:12]
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def manufacturer(tmp_path_factory: pytest.TempPathFactory) -> Manufacturer:
    return Manufacturer.create(tmp_path_factory.mktemp("manufacturer"))


def make_context(
    request: pytest.FixtureRequest,
    backend: str,
    tmp: Path,
    manufacturer: Manufacturer,
    **settings: int,
) -> GatewayContext:
    config = GatewayConfig(
        state_dir=tmp,
        database_url=fresh_database_url(request, backend, tmp),
        manufacturer_ca=(manufacturer.ca_path,),
    )
    config = replace(config, **settings)
    ensure_keys(tmp, config.gateway_id)
    return build_context(config)


class ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        pass


def serve_in_thread(ctx: GatewayContext) -> tuple[str, ThreadedServer, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = ThreadedServer(uvicorn.Config(create_app(ctx), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "the gateway did not start")
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def gw(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, manufacturer: Manufacturer
) -> Iterator[GatewayUnderTest]:
    """A running gateway on ``backend`` with a staff member, a household and its bills."""
    ctx = make_context(request, backend, tmp_path, manufacturer)
    url, server, thread = serve_in_thread(ctx)
    try:
        yield GatewayUnderTest.setup(url, ctx, manufacturer)
    finally:
        server.should_exit = True
        thread.join(10)
        ctx.db.engine.dispose()


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankProcess]:
    """The bank simulator as its own process, for the mandate tests of one module."""
    with bank_process(tmp_path_factory.mktemp("bank")) as running:
        yield running


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    manufacturer: Manufacturer,
    bank: BankProcess,
) -> Iterator[MandateWorld]:
    """A running gateway on ``backend`` that takes mandate payments from ``bank`` (1 s timeout)."""
    ctx = make_context(
        request, backend, tmp_path, manufacturer, bank_url=bank.url, bank_timeout_seconds=1
    )
    url, server, thread = serve_in_thread(ctx)
    try:
        yield MandateWorld(GatewayUnderTest.setup(url, ctx, manufacturer), bank)
    finally:
        bank.clear_faults()  # releases a debit answer still held by timeout_after_debit
        server.should_exit = True
        thread.join(10)
        ctx.db.engine.dispose()
