"""Running the API under uvicorn: one process on SQLite, several workers on PostgreSQL.

The listening socket is bound here (port 0 picks a free one) so the real URL can be printed as
``gateway listening on http://HOST:PORT`` for scripts and tests to read.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors.multiprocess import Multiprocess

from gateway.api.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.context import build_context
from gateway.errors import ConfigError


def app_from_env() -> FastAPI:
    """Factory each worker process calls; the parent passed the configuration by environment."""
    return create_app(build_context(load_config(), migrate=False))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


class _AnnouncingServer(uvicorn.Server):
    url = ""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        print(f"gateway listening on {self.url}", flush=True)


def serve(
    config: GatewayConfig,
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    workers: int,
) -> int:
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("give both --tls-cert and --tls-key, or neither")
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers > 1 and not config.effective_database_url.startswith("postgresql"):
        raise ConfigError(
            "several workers need PostgreSQL (SQLite allows one writer); use --database-url "
            "postgresql+psycopg://… or --workers 1"
        )
    ctx = build_context(config)  # migrates once, before any worker starts
    sock = _bind(host, port)
    tls = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)} if tls_cert else {}
    common = {"log_level": "warning", "access_log": False, "proxy_headers": True, **tls}
    url = _url(sock, tls_cert is not None)
    if workers == 1:
        server = _AnnouncingServer(uvicorn.Config(create_app(ctx), **common))
        server.url = url
        server.run(sockets=[sock])
        return 0
    os.environ["TVPAY_GATEWAY_STATE"] = str(config.state_dir)
    os.environ["TVPAY_GATEWAY_DATABASE_URL"] = config.effective_database_url
    uv_config = uvicorn.Config(
        "gateway.server:app_from_env", factory=True, workers=workers, **common
    )
    print(f"gateway listening on {url}", flush=True)
    Multiprocess(uv_config, sockets=[sock]).run()
    return 0
