"""The emulator's local CA and 127.0.0.1 server certificate, checked by a real TLS handshake."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

from emulator.stack.tls import ensure_tls


def test_a_client_trusting_only_the_ca_verifies_the_server(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls.server_cert, tls.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.sendall(tls_conn.recv(16))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(tls.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        conn.sendall(b"hello")
        assert conn.recv(16) == b"hello"
    thread.join(5)
    listener.close()


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    for key in (tls.server_key, tmp_path / "tls" / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_kept_directory_reuses_its_ca(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path / "tls").ca_cert.read_bytes()
    second = ensure_tls(tmp_path / "tls").ca_cert.read_bytes()
    assert first == second
