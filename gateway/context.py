"""Everything a request handler needs, built once per process from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from gateway.attestation import load_manufacturer_cas
from gateway.config import GatewayConfig
from gateway.db.engine import Database, make_engine
from gateway.db.migrate import is_current, upgrade
from gateway.idempotency import InFlight, make_in_flight
from gateway.keys import GatewayKeys, load_keys


@dataclass(frozen=True, slots=True)
class GatewayContext:
    config: GatewayConfig
    db: Database
    keys: GatewayKeys
    manufacturer_cas: tuple[x509.Certificate, ...]
    in_flight: InFlight


def build_context(config: GatewayConfig, migrate: bool = True) -> GatewayContext:
    """Open the database (migrating it when behind) and load keys and trusted CAs."""
    engine = make_engine(config.effective_database_url)
    if migrate and not is_current(engine):
        upgrade(engine)
    return GatewayContext(
        config=config,
        db=Database(engine),
        keys=load_keys(config.state_dir),
        manufacturer_cas=load_manufacturer_cas(config.manufacturer_ca),
        in_flight=make_in_flight(engine),
    )
